"""Type aliases shared by the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
#: A JAX PRNG key: new-style ``jax.random.key(s)`` or legacy ``jax.random.PRNGKey(s)``.
PRNGKey = jax.Array
#: An amount to prune: an int count, a float fraction in [0, 1], or a traced jax scalar.
Amount = int | float | jax.Array
#: A norm order for :func:`jaxprune.ln_structured`.
NormOrder = int | float | str
PyTree = Any
#: Selects pytree leaves: a regular expression searched in the path, or ``f(path, leaf)``.
Where = str | Callable[[str, Any], bool] | None
