"""Which channels can be removed for real: follow each pruned output channel through a jaxpr.

:func:`analyse` walks the jaxpr of ``apply_fn(params, *args)`` once, in order, tracking two
kinds of values:

- a *channel value* (:class:`Chan`): an activation one of whose axes carries the channels of
  a *group*; the axis may hold the group's channels repeated (``outer`` times) and each
  channel spread over ``inner`` consecutive positions, as after a flatten of ``(N, H, W, C)``
  (``outer = H * W``, ``inner = 1``). Channel ``c`` of a group sits at the positions ``i``
  with ``(i // inner) % C == c``. Along with it goes, per channel, the constant value that
  channel holds everywhere if it is constant (NaN if not, or not known);
- a *params value* (:class:`PVal`): computed from the params alone (a kernel, a bias
  reshaped for broadcasting, BatchNorm's ``scale * rsqrt(var + eps)``), known concretely,
  with the params leaves it comes from and which of their axes each of its axes is.

A group starts at each ``dot_general`` or convolution whose kernel is a params leaf: its
output channels are the kernel's output channels, and a channel the masks pruned entirely
is the constant 0. Elementwise operations (bias adds, activations, normalisation with
per-channel params) carry the constants along (evaluated on the per-channel values), pooling
and reductions over other axes keep them, reshapes, flattens and transposes move the axis,
a concatenation along the channels makes a group of its operands' groups at their offsets
(channels go exactly where their parts' go), and a residual addition of two groups joins
them into one (a channel survives where any
producer kept it: its constant is only known where every operand's is). Each params leaf
read along a group's channels (bias, norm parameters and statistics) becomes a member to
slice.

Where the group's values enter a consumer's contracting axis (a ``dot_general`` or a
convolution), the consumer's input rows (or input channels) are members too, and the entry
records the constants: a removed channel that still holds a nonzero constant adds
``constant * rows`` to the consumer's output, which is folded into the bias added right
after the consumer, exactly, for a dense layer and an unpadded convolution; with padding
(the borders see zeros) or without a bias, only channels that are exactly zero can go.

Anything else a group's values meet (a reduction over the channel axis such as LayerNorm's
or softmax's, a grouped convolution, a reshape that splits the channels, the function's
output) pins the group: its channels all stay, and the reason is reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from jax.extend import core as jcore

from . import _host_eval, _tracked
from ._tracked import ELEMENTWISE, OPAQUE, Chan, Entry, Group, PVal, inner_jaxpr


class Analysis:
    """The groups of one traced function; see the module."""

    def __init__(self, jaxpr: jcore.ClosedJaxpr, n_params: int, leaves: list | None, dead):
        self.n_params = n_params
        self.leaves = leaves  # concrete params leaves (masked), or None: shapes only
        self.dead = dead  # dead(leaf, axis) -> bool array: output channels pruned entirely
        self.groups: dict[int, Group] = {}
        self.parent: dict[int, int] = {}
        self.shapes: dict[Any, tuple[int, ...]] = {}  # var -> its shape
        self.chans: dict[Any, Chan] = {}  # var -> channel info, for every tracked var
        self.pvals: dict[Any, PVal] = {}  # var -> params value, for every one
        self.owner: dict[tuple[int, int], int] = {}
        self.pending: dict[Any, Entry] = {}
        env: dict[Any, Any] = {}
        top = jaxpr.jaxpr
        for i, var in enumerate(top.invars):
            if i < n_params:
                value = None if leaves is None else leaves[i]
                env[var] = PVal(value, ((i, tuple(range(len(var.aval.shape)))),))
                self.pvals[var] = env[var]
            else:
                env[var] = None
        for var, c in zip(top.constvars, jaxpr.consts):
            env[var] = PVal(np.asarray(c), ())
        self._walk(top, env)
        for var in top.outvars:
            info = self._read(env, var)
            if isinstance(info, Chan):
                self._pin(info.group, "the function's output")

    # -- groups ---------------------------------------------------------------------------

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def group(self, g: int) -> Group:
        return self.groups[self.find(g)]

    def _new_group(self, size: int) -> int:
        g = len(self.parent)
        self.parent[g] = g
        self.groups[g] = Group(size)
        return g

    def _union(self, a: int, b: int, where: str) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        ga, gb = self.groups[a], self.groups[b]
        if ga.size != gb.size or ga.parts is not None or gb.parts is not None:
            reason = where if ga.size != gb.size else f"{where}: a concatenation's channels "
            reason += "" if ga.size != gb.size else "added to other channels"
            self._pin(a, reason)
            self._pin(b, reason)
            return a
        self.parent[b] = a
        ga.producers += gb.producers
        ga.entries += gb.entries
        ga.pins += gb.pins
        for k, v in gb.members.items():
            if k in ga.members and ga.members[k] != v:
                ga.pins.append(f"{where}: a params leaf read in two layouts")
            ga.members[k] = v
            self.owner[k] = a
        del self.groups[b]
        return a

    def _pin(self, g: int, reason: str) -> None:
        self.group(g).pins.append(reason)

    def _member(self, g: int, leaf: int, axis: int, outer: int, inner: int, where: str) -> None:
        key = (leaf, axis)
        if key in self.owner and self.find(self.owner[key]) != self.find(g):
            g = self._union(self.owner[key], g, where)
        group = self.group(g)
        if key in group.members and group.members[key] != (outer, inner):
            group.pins.append(f"{where}: a params leaf read in two layouts")
        group.members[key] = (outer, inner)
        self.owner[key] = self.find(g)

    # -- the walk -------------------------------------------------------------------------

    def _read(self, env: dict, var: Any) -> Any:
        if isinstance(var, jcore.Literal):
            return PVal(np.asarray(var.val), ())
        return env.get(var)

    def _walk(self, jaxpr: jcore.Jaxpr, env: dict) -> None:
        uses: dict[Any, int] = {}
        for eqn in jaxpr.eqns:
            for v in eqn.invars:
                if not isinstance(v, jcore.Literal):
                    uses[v] = uses.get(v, 0) + 1
        for v in jaxpr.outvars:
            if not isinstance(v, jcore.Literal):
                uses[v] = uses.get(v, 0) + 1
        for eqn in jaxpr.eqns:
            ins = [self._read(env, v) for v in eqn.invars]
            where = _where(eqn)
            call = inner_jaxpr(eqn)
            if call is not None:
                sub, consts = call
                sub_env = {v: PVal(np.asarray(c), ()) for v, c in zip(sub.constvars, consts)}
                n_skip = len(eqn.invars) - len(sub.invars)
                sub_env.update(zip(sub.invars, ins[n_skip:]))
                self._walk(sub, sub_env)
                outs = [self._read(sub_env, v) for v in sub.outvars]
            elif all(isinstance(i, PVal) for i in ins):
                outs = self._params_only(eqn, ins)
            else:
                outs = self._activation(eqn, ins, uses, where)
            for var, out in zip(eqn.outvars, outs):
                env[var] = out
                self.shapes[var] = tuple(var.aval.shape)
                if isinstance(out, Chan):
                    self.chans[var] = out
                elif isinstance(out, PVal):
                    self.pvals[var] = out

    def _params_only(self, eqn: jcore.JaxprEqn, ins: list[PVal]) -> list[PVal]:
        """Evaluate concretely (when values are known) and follow the leaf axes."""
        values = None
        if all(i.value is not None for i in ins) and self.leaves is not None:
            values = _host_eval.on_host(eqn, [i.value for i in ins])
        shapes = [tuple(v.aval.shape) for v in eqn.invars]
        results = []
        for k, var in enumerate(eqn.outvars):
            out_shape = tuple(var.aval.shape)
            sources = []
            for inp, shape in zip(ins, shapes):
                for leaf, axes in inp.sources:
                    sources.append((leaf, _tracked.map_axes(eqn, axes, shape, out_shape)))
            value = None if values is None else values[k]
            results.append(PVal(value, tuple(sources)))
        return results

    def _activation(self, eqn, ins, uses, where) -> list[Any]:
        name = eqn.primitive.name
        chans = [i for i in ins if isinstance(i, Chan)]
        if name in ELEMENTWISE:
            return [self._elementwise(eqn, ins, chans, uses, where)]
        if name == "dot_general":
            return [self._dot(eqn, ins, where)]
        if name == "conv_general_dilated":
            return [self._conv(eqn, ins, where)]
        if not chans:
            return [None] * len(eqn.outvars)
        (c,) = chans if len(chans) == 1 else (None,)
        in_shape = tuple(eqn.invars[0].aval.shape)
        out_shape = tuple(eqn.outvars[0].aval.shape) if eqn.outvars else ()
        if name == "concatenate":
            return [self._concatenate(eqn, ins, chans, where)]
        if c is not None and isinstance(ins[0], Chan):
            if name in ("reshape", "squeeze", "expand_dims"):
                moved = _tracked.reshape_chan(c, in_shape, out_shape, self.group(c.group).size)
                if moved is not None:
                    return [moved]
                self._pin(c.group, f"{where}: a reshape that splits the channels")
                return [None]
            if name == "transpose":
                return [c.moved(list(eqn.params["permutation"]).index(c.axis))]
            if name == "broadcast_in_dim":
                b = eqn.params["broadcast_dimensions"][c.axis]
                if out_shape[b] == in_shape[c.axis]:
                    return [c.moved(b)]
            if (
                name in ("reduce_sum", "reduce_max", "reduce_min")
                and c.axis not in eqn.params["axes"]
            ):
                axes = eqn.params["axes"]
                const = c.const
                if name == "reduce_sum" and const is not None:
                    const = const * math.prod(in_shape[a] for a in axes)
                axis = c.axis - sum(a < c.axis for a in axes)
                return [Chan(c.group, axis, c.outer, c.inner, const)]
            if name.startswith("reduce_window") and _tracked.window_keeps(eqn, c.axis):
                return [self._pool(eqn, c)]
        for chan in chans:
            self._pin(chan.group, f"{where}: {_describe(eqn, chans)}")
        return [None] * len(eqn.outvars)

    def _elementwise(self, eqn, ins, chans, uses, where) -> Chan | None:
        if not chans:
            return None
        first = chans[0]
        for other in chans[1:]:
            if (other.axis, other.outer, other.inner) != (first.axis, first.outer, first.inner):
                self._pin(first.group, f"{where}: operands with channels on different axes")
                self._pin(other.group, f"{where}: operands with channels on different axes")
                return None
            self._union(first.group, other.group, where)
        size = self.group(first.group).size
        # A bias added right after a consumer: the consumer's constants fold into it.
        if eqn.primitive.name == "add" and len(chans) == 1:
            for var, info in zip(eqn.invars, ins):
                if isinstance(info, Chan) and var in self.pending and uses.get(var) == 1:
                    other = ins[1] if info is ins[0] else ins[0]
                    bias = (
                        _tracked.vector_leaf(other, first.axis) if isinstance(other, PVal) else None
                    )
                    if bias is not None:
                        for entry in self.pending[var]:
                            entry.bias = bias
        vectors = []
        for var, info in zip(eqn.invars, ins):
            if isinstance(info, Chan):
                vectors.append(info.const)
            elif isinstance(info, PVal):
                vec = self._per_channel(info, var, first, size, where)
                vectors.append(vec)
            else:  # another activation, without channel information
                other = tuple(var.aval.shape)
                if len(other) > first.axis and other[first.axis] != 1:
                    self._pin(
                        first.group,
                        f"{where}: combined with an activation that keeps every channel",
                    )
                vectors.append(None if first.const is None else np.full(size, np.nan))
        const = None
        if self.leaves is not None and all(v is not None for v in vectors):
            const = _host_eval.per_channel(eqn, vectors, size)
        return Chan(first.group, first.axis, first.outer, first.inner, const)

    def _per_channel(self, info: PVal, var, chan: Chan, size: int, where: str):
        """A params value's value per channel along ``chan``'s axis (members recorded)."""
        shape = tuple(var.aval.shape) if hasattr(var, "aval") else ()
        if not shape:  # a scalar
            return None if info.value is None else np.broadcast_to(np.asarray(info.value), size)
        if shape[chan.axis] != 1 and not any(
            axes[chan.axis] not in (None, OPAQUE) for _, axes in info.sources
        ):
            self._pin(
                chan.group,
                f"{where}: a params value of the channels' size that is no params leaf's axis",
            )
        for leaf, axes in info.sources:
            la = axes[chan.axis]
            if la == OPAQUE:
                self._pin(chan.group, f"{where}: a params value that mixes a leaf's axes")
            elif la is not None:
                self._member(chan.group, leaf, la, chan.outer, chan.inner, where)
        if info.value is None:
            return None
        value = np.asarray(info.value, np.float64)
        moved = np.moveaxis(value, chan.axis, 0).reshape(value.shape[chan.axis], -1)
        # A channel's value where it is the same at every position, else NaN.
        column = np.where((moved == moved[:, :1]).all(axis=1), moved[:, 0], np.nan)
        if column.size == 1:
            return np.broadcast_to(column, size)
        if column.size != chan.outer * size * chan.inner:
            return np.full(size, np.nan)
        per = column.reshape(chan.outer, size, chan.inner).transpose(1, 0, 2).reshape(size, -1)
        return np.where((per == per[:, :1]).all(axis=1), per[:, 0], np.nan)

    def _kernel(self, info: Any, axes_wanted: list[int], where: str):
        """The leaf and its axes behind a kernel operand, or None."""
        if not isinstance(info, PVal) or len(info.sources) != 1:
            return None
        leaf, axes = info.sources[0]
        mapped = [axes[a] for a in axes_wanted]
        if any(m is None or m == OPAQUE for m in mapped):
            return None
        return leaf, mapped

    def _concatenate(self, eqn, ins, chans: list[Chan], where: str) -> Chan | None:
        """Along the channel axis: a group made of the operands' groups at their offsets.
        Along another axis: the operands' channels are the same channels."""
        dim = eqn.params["dimension"]
        first = chans[0]
        layouts = {(c.axis, c.outer, c.inner) for c in chans}
        whole = all(isinstance(i, Chan) for i in ins)
        if len(layouts) == 1 and first.axis != dim and whole:
            for other in chans[1:]:
                self._union(first.group, other.group, where)
            const = first.const
            for other in chans[1:]:
                if const is not None and other.const is not None:
                    const = np.where(np.isnan(other.const), np.nan, const)
            return Chan(self.find(first.group), first.axis, first.outer, first.inner, const)
        if not all(c.axis == dim and c.outer == c.inner == 1 for c in chans):
            for c in chans:
                self._pin(c.group, f"{where}: {_describe(eqn, [c])}")
            return None
        parts, consts, offset = [], [], 0
        for var, info in zip(eqn.invars, ins):
            size = var.aval.shape[dim]
            if isinstance(info, Chan):
                parts.append((self.find(info.group), offset, size))
                consts.append(info.const)
            else:  # its channels all stay
                parts.append((None, offset, size))
                consts.append(np.full(size, np.nan))
            offset += size
        g = self._new_group(offset)
        self.groups[g].parts = parts
        const = None if any(c is None for c in consts) else np.concatenate(consts)
        return Chan(g, dim, 1, 1, const)

    def _dot(self, eqn, ins, where) -> Chan | None:
        lhs, rhs = ins
        ((lc, rc), (lb, rb)) = eqn.params["dimension_numbers"]
        if isinstance(lhs, Chan) and isinstance(rhs, Chan):
            return self._dot_of_channels(lhs, rhs, lb, rb, where, eqn)
        rhs_shape = tuple(eqn.invars[1].aval.shape)
        lhs_shape = tuple(eqn.invars[0].aval.shape)
        free = [d for d in range(len(rhs_shape)) if d not in rc and d not in rb]
        if isinstance(rhs, Chan) or lb or rb or not free:
            for c in (lhs, rhs):
                if isinstance(c, Chan):
                    self._pin(c.group, f"{where}: {_describe(eqn, [c])}")
            return None
        kernel = self._kernel(rhs, [*free, *rc], where)
        if kernel is None:
            if isinstance(lhs, Chan):
                self._pin(lhs.group, f"{where}: a matmul whose weight is not a params leaf")
            return None
        leaf, mapped = kernel
        out_axes, in_axes = mapped[: len(free)], mapped[len(free) :]
        # Several output axes (DenseGeneral: heads and head size): the group runs along the
        # one the masks pruned whole slices of (the heads), else the first.
        pick = [i for i, a in enumerate(out_axes) if self.dead and self.dead(leaf, a).any()]
        pick = pick[0] if len(pick) == 1 else 0
        out_axis = out_axes[pick]
        entries = []
        if isinstance(lhs, Chan):
            if lhs.axis not in lc:
                self._pin(lhs.group, f"{where}: a matmul that does not contract the channels")
            else:
                k_axis = in_axes[list(lc).index(lhs.axis)]
                entries.append(self._entry(lhs, leaf, k_axis, True, out_axis, where))
        n_lhs_free = len(lhs_shape) - len(lc)
        out_shape = tuple(eqn.outvars[0].aval.shape)
        axis = n_lhs_free + pick
        out = self._produce(leaf, out_axis, axis, out_shape[axis])
        if entries:
            self.pending[eqn.outvars[0]] = entries
        return out

    def _dot_of_channels(self, lhs: Chan, rhs: Chan, lb, rb, where, eqn) -> Chan | None:
        """Attention's matmuls: both operands carry the same channels (heads) on one batch
        axis. An output channel is 0 where either operand's is 0."""
        lb, rb = list(lb), list(rb)
        same = (
            lhs.axis in lb
            and rhs.axis in rb
            and lb.index(lhs.axis) == rb.index(rhs.axis)
            and (lhs.outer, lhs.inner, rhs.outer, rhs.inner) == (1, 1, 1, 1)
        )
        if not same:
            for c in (lhs, rhs):
                self._pin(c.group, f"{where}: {_describe(eqn, [c])}")
            return None
        g = self._union(lhs.group, rhs.group, where)
        const = None
        if lhs.const is not None and rhs.const is not None:
            const = np.where((lhs.const == 0) | (rhs.const == 0), 0.0, np.nan)
        return Chan(g, lb.index(lhs.axis), 1, 1, const)

    def _conv(self, eqn, ins, where) -> Chan | None:
        lhs, rhs = ins
        dn = eqn.params["dimension_numbers"]
        lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
        out_shape = tuple(eqn.outvars[0].aval.shape)
        grouped = eqn.params["feature_group_count"] != 1 or eqn.params["batch_group_count"] != 1
        kernel = None if isinstance(rhs, Chan) else self._kernel(rhs, list(rhs_spec[:2]), where)
        if grouped or kernel is None:
            reason = (
                f"a grouped convolution (feature_group_count={eqn.params['feature_group_count']})"
                if grouped
                else "a convolution whose kernel is not a params leaf"
            )
            if isinstance(lhs, Chan):
                self._pin(lhs.group, f"{where}: {reason}")
            if grouped and kernel is not None:
                out = self._produce(kernel[0], kernel[1][0], out_spec[1], out_shape[out_spec[1]])
                self._pin(out.group, f"{where}: {reason}")
            return None
        leaf, (out_axis, in_axis) = kernel
        entries = []
        if isinstance(lhs, Chan):
            if lhs.axis != lhs_spec[1]:
                self._pin(lhs.group, f"{where}: a convolution over the channel axis")
            else:
                padded = any(p != (0, 0) for p in eqn.params["padding"]) or any(
                    d != 1 for d in eqn.params["lhs_dilation"]
                )
                entries.append(self._entry(lhs, leaf, in_axis, not padded, out_axis, where))
        out = self._produce(leaf, out_axis, out_spec[1], out_shape[out_spec[1]])
        if entries:
            self.pending[eqn.outvars[0]] = entries
        return out

    def _entry(self, chan: Chan, leaf, axis, exact, out_axis, where) -> Entry:
        entry = Entry(leaf, axis, chan.outer, chan.inner, chan.const, exact, out_axis)
        self._member(chan.group, leaf, axis, chan.outer, chan.inner, where)
        self.group(chan.group).entries.append(entry)
        return entry

    def _produce(self, leaf: int, out_axis: int, axis: int, size: int) -> Chan:
        g = self._new_group(size)
        self.group(g).producers.append((leaf, out_axis))
        self._member(g, leaf, out_axis, 1, 1, "a layer's output")
        const = None
        if self.leaves is not None:
            const = np.where(self.dead(leaf, out_axis), 0.0, np.nan)
        return Chan(g, axis, 1, 1, const)

    def _pool(self, eqn, c: Chan) -> Chan:
        const = c.const
        padded = any(p != (0, 0) for p in eqn.params["padding"])
        if const is not None and eqn.primitive.name == "reduce_window_sum":
            if padded:  # the borders sum fewer entries: only zeros stay constant
                const = np.where(const == 0, 0.0, np.nan)
            else:
                const = const * math.prod(eqn.params["window_dimensions"])
        return Chan(c.group, c.axis, c.outer, c.inner, const)

    # -- the result -----------------------------------------------------------------------

    def removable(self) -> dict[int, np.ndarray]:
        """Per group (by its root id), the channels that can go: constant at every entry
        and foldable there, in no pinned group."""
        out = {}
        for g, group in self.groups.items():
            keep_all = np.zeros(group.size, bool)
            if group.pins:
                out[g] = keep_all
                continue
            ok = np.ones(group.size, bool)
            for leaf, axis in group.producers:
                ok &= self.dead(leaf, axis)
            for e in group.entries:
                const = e.const
                finite = np.isfinite(const)
                fold = finite & (e.exact & (e.bias is not None))
                ok &= (finite & (const == 0)) | fold
            out[g] = ok
        # A concatenation's constraints hold for its parts (the newest concatenation
        # first: it may be made of older ones), then its channels go where its parts' go.
        cats = sorted((g for g, group in self.groups.items() if group.parts), reverse=True)
        for g in cats:
            for part, offset, size in self.groups[g].parts:
                if part is not None:
                    out[self.find(part)] &= out[g][offset : offset + size]
        for g in reversed(cats):
            out[g] = np.concatenate(
                [
                    np.zeros(size, bool) if part is None else out[self.find(part)]
                    for part, _, size in self.groups[g].parts
                ]
            )
        return out


def _where(eqn: jcore.JaxprEqn) -> str:
    """The user's source line of an equation, for messages."""
    info = getattr(eqn, "source_info", None)
    frame = None
    try:
        from jax._src import source_info_util

        frame = source_info_util.user_frame(info.traceback) if info is not None else None
    except Exception:  # noqa: BLE001 (source positions are a courtesy)
        frame = None
    at = f" at {frame.file_name.rsplit('/', 1)[-1]}:{frame.start_line}" if frame else ""
    return f"{eqn.primitive.name}{at}"


def _describe(eqn: jcore.JaxprEqn, chans: list[Chan]) -> str:
    name = eqn.primitive.name
    if name in ("reduce_sum", "reduce_max", "reduce_min", "argmax", "argmin", "cumsum"):
        return "a reduction over the channel axis (LayerNorm, softmax, a sum of channels)"
    if name == "dot_general":
        return "a matmul of two activations (attention) or with batch axes"
    if name == "concatenate":
        return "a concatenation of channels laid out differently"
    return f"{name} is not followed through"
