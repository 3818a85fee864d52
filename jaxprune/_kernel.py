"""The selection kernel, as one documented internal entry point for torch_compat.

torch_compat reproduces torch's module state and torch's own quirks, but counts, rounds,
orders and selects with jaxprune's rules. It imports these names from here (and the public
API from :mod:`jaxprune`), never from the modules behind them, so that this page is the
whole contract between the two packages:

- :func:`exact_count`: torch's count rule (an int is a count, a float is Python's
  ``round(amount * units)``) and torch's error for an int above the units;
- :func:`order_key`: the order of scores (by magnitude, NaN last; unsigned as they are);
- :func:`lowest_k`: the exact selection of the ``k`` lowest-keyed alive units, ties to the
  lower position;
- :func:`random_keys`: the uniform bits the random methods rank;
- :func:`as_key`: the PRNG key rule;
- :func:`method`: a method's registry entry (whether it is structured, random, ...);
- :func:`check_nm`, :func:`block_shape_pair`: the checks of N:M's ``n, m`` and of a block
  shape, with jaxprune's messages.
"""

from ._amount import exact_count as exact_count
from ._blocks import block_shape_pair as block_shape_pair
from ._keys import as_key as as_key
from ._nm import check_nm as check_nm
from ._order import order_key as order_key
from ._registry import get as method
from ._select import lowest_k as lowest_k
from ._select import random_keys as random_keys

__all__ = [
    "as_key",
    "block_shape_pair",
    "check_nm",
    "exact_count",
    "lowest_k",
    "method",
    "order_key",
    "random_keys",
]
