"""2:4 and block masks on the GPT-2-medium-shaped stack, against the obvious jnp code.

For each of the 24 blocks' four kernels (302M parameters, Flax layout ``(in, out)``):

- 2:4 along the input axis: ``jp.prune(params, "nm_unstructured", n=2, m=4)`` against a
  jitted reference written the obvious way (per kernel: groups of 4, ``argsort`` of the
  magnitudes within each group, the first two kept, ties to the higher position as in
  jaxprune);
- 16x16 blocks, half of them pruned by L1 norm: ``jp.prune(params, "block_structured",
  amount=0.5, block_shape=(16, 16))`` against a jitted reference (pooled norms, ``top_k``
  of the blocks, the mask broadcast back);

masks alone and masks plus pruned weights (``jp.apply_masks``), as medians after warm-up
(compilation apart), and as a multiple of one memcpy of the parameter bytes. Both sides'
masks are checked equal before timing.
Run: ``python -m benchmarks.nm_blocks [--blocks 24] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import functools
import platform

import jax
import jax.numpy as jnp
import numpy as np

import jaxprune as jp

from .suite import _measure, _models


@functools.partial(jax.jit, static_argnums=(1, 2))
def _nm_reference(w, n, m):
    g = jnp.abs(w).T.reshape(w.shape[1], w.shape[0] // m, m)  # (out, groups, m)
    # Reversed within the group, so that a stable sort keeps the higher position among
    # equal magnitudes, as jaxprune does (Gaussian float32 weights do tie: a few groups in
    # 100M entries).
    order = jnp.argsort(-g[..., ::-1], axis=-1, stable=True)
    kept = (jnp.argsort(order, axis=-1) < n)[..., ::-1]
    return kept.reshape(w.shape[1], w.shape[0]).T


@functools.partial(jax.jit, static_argnums=(1, 2))
def _block_reference(w, block, amount):
    r, c = w.shape[0] // block, w.shape[1] // block
    norms = jnp.abs(w).reshape(r, block, c, block).sum(axis=(1, 3)).reshape(-1)
    k = round(amount * norms.size)
    _, pruned = jax.lax.top_k(-norms, k)
    kept = jnp.ones(norms.size, bool).at[pruned].set(False).reshape(r, c)
    return jnp.repeat(jnp.repeat(kept, block, axis=0), block, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nm_blocks")
    parser.add_argument("--blocks", type=int, default=24)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    _measure.keep_freed_memory()
    shapes = _models.gpt2_shapes(args.blocks)
    model = _models.Model(shapes, torch_side=False)
    params = model.params
    memcpy = _measure.memcpy_time(model.nbytes, 3)

    def nm_masks():
        return jp.prune(params, "nm_unstructured", n=2, m=4)

    def nm_ref():
        return {k: {"kernel": _nm_reference(v["kernel"], 2, 4)} for k, v in params.items()}

    def block_masks():
        return jp.prune(params, "block_structured", amount=0.5, block_shape=(16, 16))

    def block_ref():
        return {k: {"kernel": _block_reference(v["kernel"], 16, 0.5)} for k, v in params.items()}

    # The same masks, or the timing means nothing (block ties: the norms of Gaussian
    # weights do not tie).
    for ours, ref in ((nm_masks, nm_ref), (block_masks, block_ref)):
        a, b = ours(), ref()
        for k in params:
            np.testing.assert_array_equal(np.asarray(a[k]["kernel"]), np.asarray(b[k]["kernel"]))
    rows = []
    for name, ours, ref in (
        ("2:4", nm_masks, nm_ref),
        ("16x16 blocks, 0.5", block_masks, block_ref),
    ):
        t_ours = _measure.median_time(ours, args.reps)
        t_ref = _measure.median_time(ref, args.reps)
        t_both = _measure.median_time(lambda ours=ours: jp.apply_masks(params, ours()), args.reps)
        t_ref_both = _measure.median_time(lambda ref=ref: jp.apply_masks(params, ref()), args.reps)
        rows.append([name, t_ours, t_ref, t_both, t_ref_both])
    # Masks and pruned weights in one jitted step of the user's, the params donated (the
    # pruned weights written where the weights were): the mask never leaves the program.
    for row, method, kwargs in (
        (rows[0], "nm_unstructured", {"n": 2, "m": 4}),
        (rows[1], "block_structured", {"amount": 0.5, "block_shape": (16, 16)}),
    ):

        def step(p, method=method, kwargs=kwargs):
            masks = jp.prune(p, method, **kwargs)
            return masks, jp.apply_masks(p, masks)

        step = jax.jit(step, donate_argnums=0)
        state = {"p": jax.tree.map(jnp.copy, params)}

        def once(step=step, state=state):
            masks, state["p"] = step(state["p"])  # pruning pruned weights: the same work
            return masks, state["p"]

        row.append(_measure.median_time(once, args.reps))
    print(
        f"{platform.processor() or platform.machine()}, jax {jax.__version__}; "
        f"{args.blocks} GPT-2-medium blocks, {model.n_params / 1e6:.0f}M params, "
        f"memcpy {memcpy * 1e3:.1f} ms; medians of {args.reps}"
    )
    print(
        "| masks | jaxprune | reference | ratio | jaxprune + weights | x memcpy "
        "| reference + weights | one jitted step, donated | x memcpy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, a, b, c, d, e in rows:
        print(
            f"| {name} | {a * 1e3:.0f} ms | {b * 1e3:.0f} ms | {b / a:.1f}x | {c * 1e3:.0f} ms "
            f"| {c / memcpy:.2f} | {d * 1e3:.0f} ms | {e * 1e3:.0f} ms | {e / memcpy:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
