"""Amount rules: how many units a call prunes (torch's ``_validate_pruning_amount*``).

Two phases, as in torch: :func:`check_amount` validates the amount on its own (type and
range); :func:`exact_count` turns it into a count once the number of unpruned units is known
and rejects an int larger than that number. Under ``jit`` the count may have to be computed
from traced values: :func:`traced_count` does that inside the program.

How one call's count is decided is resolved once, here, by :func:`resolve`: a
:class:`Count` (static, hashable: part of the compiled program's identity) and the value the
program receives for it. Every layer reads that pair and nothing else.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from ._typing import Amount, Array


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


def exact_count(
    amount: int | float, units: int, what: str | None = None, name: str = "amount"
) -> int:
    """Number of units to prune among ``units`` unpruned ones (torch's rule, exactly).

    An integer (any ``numbers.Integral``) is the count itself and must not exceed ``units``;
    a float ``a`` gives Python's ``round(a * units)`` (half to even: 0.5 of 5 channels
    prunes 2).

    Raises:
        ValueError: an int larger than ``units``. ``what`` names the units in the message
            (without it the message is torch's own).
    """
    if isinstance(amount, numbers.Integral):
        if amount > units:
            raise ValueError(
                f"{name}={amount} should be smaller than the number of parameters to prune="
                f"{units}" + (f" ({what})" if what else "")
            )
        return int(amount)
    return round(amount * units)


#: A float amount over a concrete prior of at most this many units takes its count from a
#: table of Python's rounding inside the program (:data:`TABLE`), instead of a count of the
#: unpruned units on the host first, which would wait for the device between two programs.
TABLE_LIMIT = 1 << 16


def count_table(amount: int | float, max_units: int) -> np.ndarray:
    """``round(amount * n)`` for every ``n`` in ``[0, max_units]``, computed in Python; for
    an int amount (a count checked against the unpruned units already), that count."""
    if isinstance(amount, int):
        return np.full(max_units + 1, amount, dtype=np.uint32)
    return np.array([round(amount * n) for n in range(max_units + 1)], dtype=np.uint32)


@functools.lru_cache(maxsize=256, typed=True)  # typed: 1 (one unit) is not 1.0 (all)
def device_table(amount: int | float, max_units: int) -> Array:
    """:func:`count_table` on the device, made once per amount and size (a schedule's
    amounts repeat across the layers of a model and often across steps)."""
    return jax.device_put(count_table(amount, max_units))  # no program to compile


def count_to_reach(sparsity: Array, units: int, n_alive: Array) -> Array:
    """How many units to prune now, inside a program, so that ``round(sparsity * units)``
    of the ``units`` are pruned in all (a gradual schedule's step): never fewer than none,
    never more than are unpruned (``n_alive``)."""
    target = jnp.round(sparsity * units).astype(jnp.int32)
    n_alive = n_alive.astype(jnp.int32)
    return jnp.clip(target - (units - n_alive), 0, n_alive).astype(jnp.uint32)


def traced_count(amount: Amount, n_alive: Array, max_units: int) -> Array:
    """The count to prune, computed inside a program from a traced number of unpruned units.

    A float amount rounds half to even in its own dtype (float32 unless x64 is enabled); an int
    amount is a count. Either is clamped to ``[0, n_alive]``: a traced value cannot raise.
    A Python float with a small ``max_units`` is looked up in a table of Python's rounding,
    so it stays exact.
    """
    n_alive = n_alive.astype(jnp.uint32)
    if isinstance(amount, float) and max_units <= TABLE_LIMIT:
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


class Count(NamedTuple):
    """How a call's count to prune is decided (hashable: a static argument of the programs).

    ``kind`` is one of:

    - ``"exact"``: the count is known; the program's count argument is it (a NumPy
      ``uint32``, or a traced count a caller computed);
    - ``"table"``: a Python amount over a concrete prior of at most :data:`TABLE_LIMIT`
      units; the argument is :func:`device_table`, ``round(amount * n)`` for every ``n`` (an
      int amount: the count itself, checked on the host first), which the program indexes
      with the number of unpruned units it counts. Floats and ints thus share one program
      for every round after the first;
    - ``"traced"``: a ``jax.Array`` amount; the argument is the amount, rounded in the
      program (:func:`traced_count`);
    - ``"static"``: a Python amount over a traced prior; the amount is ``amount`` (part of
      the program) and the argument is None.
    """

    kind: str
    amount: int | float | None = None

    def in_program(self, value: Any, n_alive: Array, max_units: int) -> Array:
        """The count, inside a traced program, from the argument ``value`` and the number of
        unpruned units ``n_alive`` (of at most ``max_units``)."""
        if self.kind == "exact":
            return jnp.asarray(value, jnp.uint32)
        if self.kind == "table":
            return value[n_alive.astype(jnp.uint32)]
        amount = value if self.kind == "traced" else self.amount
        return traced_count(amount, n_alive, max_units)


EXACT = Count("exact")
TABLE = Count("table")
TRACED = Count("traced")


def prior_kind(prior: Any, tracing: bool | None = None) -> str | None:
    """``None`` without a prior mask; ``"traced"`` for a tracer, or for any prior while a
    JAX transformation traces the caller (a closed-over concrete prior is then a constant
    of the caller's program: nothing is counted on the host); else ``"concrete"``.
    ``tracing`` is :func:`jaxprune._checks.under_trace`, when the caller knows it already."""
    if prior is None:
        return None
    if isinstance(prior, jax.core.Tracer):
        return "traced"
    return "traced" if (_checks.under_trace() if tracing is None else tracing) else "concrete"


def uses_table(amount: Amount, units: int, prior: str | None) -> bool:
    """Whether :func:`resolve` takes the count from a table in the program: a Python amount
    over a concrete prior of at most :data:`TABLE_LIMIT` units."""
    return prior == "concrete" and not isinstance(amount, jax.Array) and units <= TABLE_LIMIT


def needs_alive_count(amount: Amount, units: int, prior: str | None) -> bool:
    """Whether :func:`resolve` needs the number of unpruned units counted on the host first:
    a Python amount over a concrete prior, except a float that a table counts in the program
    (an int is checked against the unpruned units before any work, as torch checks it)."""
    return (
        prior == "concrete"
        and not isinstance(amount, jax.Array)
        and not (isinstance(amount, float) and uses_table(amount, units, prior))
    )


def resolve(
    amount: Amount, units: int, *, prior: str | None, n_alive: int | None, what: str
) -> tuple[Count, Any]:
    """The :class:`Count` of a call and the value its program receives.

    Args:
        amount: a checked amount (:func:`check_amount`).
        units: the number of units the call selects among.
        prior: :func:`prior_kind` of the call's prior mask.
        n_alive: the unpruned units counted on the host, when :func:`needs_alive_count`.
        what: the units, for error messages (``"channels of a tensor of shape (4, 8)"``).

    Raises:
        ValueError: an int amount larger than the units it counts among (all of them when
            the prior is traced).
    """
    if isinstance(amount, jax.Array):
        return TRACED, amount
    if prior is None:
        return EXACT, np.uint32(exact_count(amount, units, what))
    if n_alive is not None:
        k = exact_count(amount, n_alive, f"unpruned {what}")
        if uses_table(amount, units, prior):  # the program of a float amount, and a count
            return TABLE, device_table(k, units)
        return EXACT, np.uint32(k)
    if uses_table(amount, units, prior):
        return TABLE, device_table(amount, units)
    exact_count(amount, units, what)  # a traced prior: an int is checked against every unit
    return Count("static", amount), None
