"""Sparsity schedules for gradual pruning: step -> total sparsity, plus when to prune."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ._typing import Array, ArrayLike


def _check_fraction(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1]; got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}={value} should be a float in the range [0, 1]")
    return float(value)


def _check_step(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    if value < 0:
        raise ValueError(f"{name}={value} should be a non-negative int")
    return value


@dataclasses.dataclass(frozen=True)
class PolynomialSchedule:
    """Sparsity that rises from ``initial_sparsity`` to ``final_sparsity`` (TF-MOT's
    ``PolynomialDecay``; Zhu & Gupta, 2017).

    Calling it with a step gives the total sparsity the model should have after pruning at
    that step: ``initial_sparsity`` before ``begin_step``; from ``begin_step`` the formula
    ``final + (initial - final) * (1 - p) ** power`` with
    ``p = (s - begin_step) / (end_step - begin_step)``, where ``s`` is the step rounded down to
    ``begin_step`` plus a multiple of ``frequency`` (the value is held between pruning steps);
    exactly ``final_sparsity`` from ``end_step`` on. :meth:`is_pruning_step` says when masks
    are recomputed: at ``begin_step``, every ``frequency`` steps after it, and at ``end_step``
    (so the final sparsity is always reached, even when ``frequency`` does not divide the
    span). Values are float32 under ``jit``; steps may be traced.

    Example:
        >>> import jaxprune as jp
        >>> s = jp.PolynomialSchedule(0.0, 0.5, begin_step=0, end_step=4, power=1.0)
        >>> [float(s(t)) for t in range(6)]
        [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    """

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    frequency: int = 1
    power: float = 3.0

    def __post_init__(self):
        _check_fraction(self.initial_sparsity, "initial_sparsity")
        _check_fraction(self.final_sparsity, "final_sparsity")
        _check_step(self.begin_step, "begin_step")
        _check_step(self.end_step, "end_step")
        if self.end_step < self.begin_step:
            raise ValueError(
                f"end_step={self.end_step} should not come before begin_step={self.begin_step}"
            )
        if isinstance(self.frequency, bool) or not isinstance(self.frequency, int):
            raise TypeError(f"frequency must be an int; got {self.frequency!r}.")
        if self.frequency < 1:
            raise ValueError(f"frequency={self.frequency} should be a positive int")
        if not isinstance(self.power, (int, float)) or not self.power > 0:
            raise ValueError(f"power={self.power} should be a positive number")

    def __call__(self, step: ArrayLike) -> Array:
        step = jnp.asarray(step)
        span = max(self.end_step - self.begin_step, 1)
        held = self.begin_step + (step - self.begin_step) // self.frequency * self.frequency
        p = jnp.clip((held - self.begin_step) / span, 0.0, 1.0)
        value = (
            self.final_sparsity
            + (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power
        )
        value = jnp.where(step < self.begin_step, self.initial_sparsity, value)
        return jnp.where(step >= self.end_step, self.final_sparsity, value).astype(jnp.float32)

    def is_pruning_step(self, step: ArrayLike) -> Array:
        """Whether masks are recomputed at ``step``."""
        step = jnp.asarray(step)
        in_range = (step >= self.begin_step) & (step <= self.end_step)
        turn = ((step - self.begin_step) % self.frequency == 0) | (step == self.end_step)
        return in_range & turn


def polynomial_schedule(
    initial_sparsity: float,
    final_sparsity: float,
    begin_step: int,
    end_step: int,
    frequency: int = 1,
    power: float = 3,
) -> PolynomialSchedule:
    """A polynomial-decay sparsity schedule (see :class:`PolynomialSchedule`).

    Example:
        >>> import jaxprune as jp
        >>> s = jp.polynomial_schedule(0.0, 0.8, begin_step=10, end_step=20, frequency=5)
        >>> [round(float(s(t)), 4) for t in (0, 10, 14, 15, 19, 20, 100)]
        [0.0, 0.0, 0.0, 0.7, 0.7, 0.8, 0.8]
        >>> [bool(s.is_pruning_step(t)) for t in (9, 10, 12, 15, 20, 25)]
        [False, True, False, True, True, False]
    """
    return PolynomialSchedule(
        initial_sparsity, final_sparsity, begin_step, end_step, frequency, power
    )


def one_shot_schedule(sparsity: float, step: int) -> PolynomialSchedule:
    """Prune once, at ``step``, to ``sparsity`` (0 before it).

    Example:
        >>> import jaxprune as jp
        >>> s = jp.one_shot_schedule(0.5, step=3)
        >>> [float(s(t)) for t in (2, 3, 9)], [bool(s.is_pruning_step(t)) for t in (2, 3, 4)]
        ([0.0, 0.5, 0.5], [False, True, False])
    """
    return PolynomialSchedule(0.0, sparsity, step, step, 1, 1.0)


def constant_schedule(sparsity: float) -> PolynomialSchedule:
    """``sparsity`` from the first step on (pruned once, at step 0).

    Example:
        >>> import jaxprune as jp
        >>> s = jp.constant_schedule(0.3)
        >>> [round(float(s(t)), 4) for t in (0, 5)], [bool(s.is_pruning_step(t)) for t in (0, 1)]
        ([0.3, 0.3], [True, False])
    """
    return PolynomialSchedule(sparsity, sparsity, 0, 0, 1, 1.0)
