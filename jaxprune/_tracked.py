"""What the channel analysis (:mod:`jaxprune._coupling`) tracks through a jaxpr: the kinds
of values, the groups of channels, the primitives it knows, and how axes move through
reshapes."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from jax.extend import core as jcore

#: Primitives applied entry by entry: they keep every axis, and a constant channel stays
#: constant (its value is computed on the per-channel values).
ELEMENTWISE = frozenset(
    """add sub mul div max min neg exp exp2 log log1p expm1 tanh logistic erf erfc erf_inv abs
    sqrt rsqrt cbrt integer_pow pow square sign sin cos tan sinh cosh asinh acosh atanh atan
    atan2 floor ceil round is_finite convert_element_type copy copy_p reduce_precision
    select_n clamp gt lt ge le eq ne and or not xor nextafter rem stop_gradient""".split()
)
#: Primitives whose inner jaxpr is walked as if inlined.
CALLS = {
    "pjit": "jaxpr",
    "jit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
    "remat": "jaxpr",
    "checkpoint": "jaxpr",
}
OPAQUE = -1  # a params value's axis that is no single axis of its leaf


def inner_jaxpr(eqn: jcore.JaxprEqn) -> tuple[jcore.Jaxpr, list[Any]] | None:
    """The jaxpr (and its constants) that a call equation runs (:data:`CALLS`), walked and
    evaluated as if inlined; None for any other equation. Its inputs are the equation's
    last ``len(jaxpr.invars)`` operands."""
    key = CALLS.get(eqn.primitive.name)
    if key is None or key not in eqn.params:
        return None
    inner = eqn.params[key]
    if hasattr(inner, "jaxpr"):  # a ClosedJaxpr
        return inner.jaxpr, list(inner.consts)
    return inner, []


@dataclasses.dataclass
class Chan:
    """An activation whose ``axis`` carries the channels of group ``group``."""

    group: int
    axis: int
    outer: int
    inner: int
    const: np.ndarray | None  # (C,) float64, NaN where not a known constant

    def moved(self, axis: int, outer: int | None = None, inner: int | None = None) -> Chan:
        return Chan(
            self.group,
            axis,
            self.outer if outer is None else outer,
            self.inner if inner is None else inner,
            self.const,
        )


@dataclasses.dataclass
class PVal:
    """A value computed from the params alone; ``sources``: ``(leaf, axes)`` pairs, where
    ``axes[i]`` is the leaf axis that axis ``i`` is, None where it is broadcast (size 1 or
    not from the leaf), :data:`OPAQUE` where it mixes leaf axes."""

    value: Any
    sources: tuple[tuple[int, tuple[int | None, ...]], ...]


@dataclasses.dataclass
class Entry:
    """A group's channels entering a consumer's contracting axis."""

    kernel: int  # leaf index of the consumer's kernel
    axis: int  # its contracting (input) axis
    outer: int
    inner: int
    const: np.ndarray | None
    exact: bool  # a constant folds exactly (dense, or a convolution without padding)
    out_axis: int  # the kernel's output axis
    bias: tuple[int, int] | None = None  # (leaf, axis) of the bias added right after


@dataclasses.dataclass
class Group:
    """Channels that go or stay together. A concatenation's group has ``parts``: the
    groups it is made of, ``(group, offset, size)`` each (group None: channels of an
    operand without channel information, which all stay); its channels go exactly where
    its parts' do."""

    size: int
    producers: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    members: dict[tuple[int, int], tuple[int, int]] = dataclasses.field(default_factory=dict)
    entries: list[Entry] = dataclasses.field(default_factory=list)
    pins: list[str] = dataclasses.field(default_factory=list)
    parts: list[tuple[int | None, int, int]] | None = None


def reshape_blocks(in_shape, out_shape):
    """Split a reshape into blocks of consecutive axes with equal products: pairs of
    ``(in_axes, out_axes)`` ranges (size-1 axes attach to a neighbouring block)."""
    blocks = []
    i = j = 0
    while i < len(in_shape) or j < len(out_shape):
        i0, j0 = i, j
        pi = in_shape[i] if i < len(in_shape) else 1
        pj = out_shape[j] if j < len(out_shape) else 1
        i, j = min(i + 1, len(in_shape)), min(j + 1, len(out_shape))
        while pi != pj:
            if pi < pj:
                pi *= in_shape[i]
                i += 1
            else:
                pj *= out_shape[j]
                j += 1
        blocks.append((range(i0, i), range(j0, j)))
    return blocks


def reshape_chan(c: Chan, in_shape, out_shape, size: int) -> Chan | None:
    for ins, outs in reshape_blocks(in_shape, out_shape):
        if c.axis not in ins:
            continue
        before = math.prod(in_shape[a] for a in ins if a < c.axis)
        after = math.prod(in_shape[a] for a in ins if a > c.axis)
        outer, inner = c.outer * before, c.inner * after
        pb = 1
        for b in outs:
            pa = math.prod(out_shape[a] for a in outs if a > b)
            if outer % pb == 0 and inner % pa == 0:
                o, n = outer // pb, inner // pa
                if out_shape[b] == o * size * n:
                    return c.moved(b, o, n)
            pb *= out_shape[b]
        return None
    return None


def map_axes(eqn, axes, in_shape, out_shape) -> tuple[int | None, ...]:
    """How a params value's axes (``axes``, over ``in_shape``) map through ``eqn``."""
    name = eqn.primitive.name
    if name in ELEMENTWISE:
        if len(in_shape) == len(out_shape):
            return tuple(a if in_shape[i] == out_shape[i] else None for i, a in enumerate(axes))
        return (None,) * len(out_shape)
    if name == "broadcast_in_dim":
        out: list[int | None] = [None] * len(out_shape)
        for i, b in enumerate(eqn.params["broadcast_dimensions"]):
            if in_shape[i] == out_shape[b]:
                out[b] = axes[i]
        return tuple(out)
    if name == "transpose":
        return tuple(axes[p] for p in eqn.params["permutation"])
    if name in ("reshape", "squeeze", "expand_dims"):
        out = [None] * len(out_shape)
        for ins, outs in reshape_blocks(in_shape, out_shape):
            real_in = [a for a in ins if in_shape[a] != 1]
            real_out = [b for b in outs if out_shape[b] != 1]
            if len(real_in) == 1 and len(real_out) == 1:
                out[real_out[0]] = axes[real_in[0]]
            else:
                for b in real_out:
                    out[b] = OPAQUE
        return tuple(out)
    return tuple(None if s == 1 else OPAQUE for s in out_shape)


def window_keeps(eqn, axis: int) -> bool:
    p = eqn.params
    return (
        p["window_dimensions"][axis] == 1
        and p["window_strides"][axis] == 1
        and tuple(p["padding"][axis]) == (0, 0)
        and p.get("base_dilation", (1,) * 99)[axis] == 1
        and p.get("window_dilation", (1,) * 99)[axis] == 1
    )


def vector_leaf(info: PVal, axis: int) -> tuple[int, int] | None:
    """The (leaf, axis) of a bias broadcast along ``axis``: one source, that axis a leaf
    axis, every other axis broadcast."""
    if len(info.sources) != 1:
        return None
    leaf, axes = info.sources[0]
    if axes[axis] is None or axes[axis] == OPAQUE:
        return None
    if any(a is not None for i, a in enumerate(axes) if i != axis):
        return None
    return leaf, axes[axis]
