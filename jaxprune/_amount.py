"""Amount rules: how many units a call prunes (torch's ``_validate_pruning_amount*``).

Two phases, as in torch: :func:`check_amount` validates the amount on its own (type and
range); :func:`exact_count` turns it into a count once the number of unpruned units is known
and rejects an int larger than that number. Under ``jit`` the count may have to be computed
from traced values: :func:`traced_count` does that inside the program.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ._typing import Amount, Array


def is_traced_amount(amount: Amount) -> bool:
    """Whether ``amount`` is a JAX array (traced or concrete) rather than a Python number."""
    return isinstance(amount, jax.Array)


def check_amount(amount: Amount, name: str = "amount") -> Amount:
    """Validate an amount before any work (torch's ``_validate_pruning_amount_init``).

    A Python/NumPy int is a count (``bool`` counts as an int, as in torch), a Python/NumPy
    float a fraction in [0, 1]. A scalar ``jax.Array`` is accepted as a traced amount: a float
    array is a fraction, an integer array a count; its value cannot be checked here, so it is
    clamped to the valid range when the count is computed.

    Raises:
        TypeError: ``amount`` is not a real number or a real scalar array.
        ValueError: a negative int, or a float outside [0, 1].
    """
    if isinstance(amount, jax.Array):
        if amount.ndim != 0:
            raise TypeError(f"{name} must be a scalar; got an array of shape {amount.shape}.")
        if not (
            jnp.issubdtype(amount.dtype, jnp.floating) or jnp.issubdtype(amount.dtype, jnp.integer)
        ):
            raise TypeError(
                f"Invalid type for {name}: array of dtype {amount.dtype}. Must be int or float."
            )
        return amount
    if isinstance(amount, np.ndarray) and amount.ndim == 0:
        amount = amount.item()
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for {name}: {amount!r}. Must be int or float.")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(
                f"{name}={amount} should either be a float in the range [0, 1] or a "
                "non-negative integer"
            )
        return int(amount)
    value = float(amount)
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons.
        raise ValueError(
            f"{name}={amount} should either be a float in the range [0, 1] or a "
            "non-negative integer"
        )
    return value


def exact_count(amount: int | float, units: int, what: str, name: str = "amount") -> int:
    """Number of units to prune among ``units`` unpruned ones (torch's rule, exactly).

    An int is the count itself and must not exceed ``units``; a float ``a`` gives Python's
    ``round(a * units)`` (half to even: 0.5 of 5 channels prunes 2).

    Raises:
        ValueError: an int larger than ``units``. ``what`` names the units in the message.
    """
    if isinstance(amount, int):
        if amount > units:
            raise ValueError(
                f"{name}={amount} should be smaller than the number of parameters to prune="
                f"{units} ({what})"
            )
        return amount
    return round(amount * units)


def count_table(amount: float, max_units: int) -> np.ndarray:
    """``round(amount * n)`` for every ``n`` in ``[0, max_units]``, computed in Python."""
    return np.array([round(amount * n) for n in range(max_units + 1)], dtype=np.uint32)


@functools.lru_cache(maxsize=256)
def device_table(amount: float, max_units: int) -> Array:
    """:func:`count_table` on the device, made once per amount and size (a schedule's
    amounts repeat across the layers of a model and often across steps)."""
    return jnp.asarray(count_table(amount, max_units))


def traced_count(amount: Amount, n_alive: Array, max_units: int) -> Array:
    """The count to prune, computed inside a program from a traced number of unpruned units.

    A float amount rounds half to even in its own dtype (float32 unless x64 is enabled); an int
    amount is a count. Either is clamped to ``[0, n_alive]``: a traced value cannot raise.
    A Python float with a small ``max_units`` is looked up in a table of Python's rounding,
    so it stays exact.
    """
    n_alive = n_alive.astype(jnp.uint32)
    if isinstance(amount, float) and max_units <= 1 << 16:
        return jnp.asarray(count_table(amount, max_units))[n_alive]
    amount = jnp.asarray(amount)
    if jnp.issubdtype(amount.dtype, jnp.floating):
        frac = jnp.clip(amount, 0.0, 1.0)
        k = jnp.round(frac * n_alive.astype(amount.dtype))
        k = jnp.where(jnp.isnan(k), 0, k)
    else:
        k = amount
    k = jnp.clip(k, 0, n_alive.astype(k.dtype))
    return k.astype(jnp.uint32)
