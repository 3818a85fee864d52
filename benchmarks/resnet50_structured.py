"""random_structured(0.3) masks for every conv/linear weight of a ResNet-50-shaped model.

jaxprune: one jit-compiled call over a Flax-layout params tree (kernels ``(kh, kw, in, out)``,
pruned along the output axis, ``dim=-1``). torch: ``torch.nn.utils.prune`` looping over
modules of the same shapes in torch layout (``(out, in, kh, kw)``, ``dim=0``).

Reported, all in one process run: jaxprune's compile time (first call) apart from its steady
state; torch's first call on fresh modules and its steady state (re-pruning after
``prune.remove``, when its allocator reuses memory); torch's ``compute_mask`` alone (masks
only, like jaxprune). Medians over repetitions after warm-up.

Run: ``python -m benchmarks.resnet50_structured [--reps N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp


def resnet50_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """(name, Flax kernel shape) of every conv and dense weight of ResNet-50."""
    shapes = [("conv_init", (7, 7, 3, 64))]
    cin = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for b in range(blocks):
            name = f"stage{stage}_block{b}"
            shapes += [
                (f"{name}/conv1", (1, 1, cin, width)),
                (f"{name}/conv2", (3, 3, width, width)),
                (f"{name}/conv3", (1, 1, width, 4 * width)),
            ]
            if b == 0:
                shapes.append((f"{name}/downsample", (1, 1, cin, 4 * width)))
            cin = 4 * width
    shapes.append(("fc", (2048, 1000)))
    return shapes


def _to_torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 4:
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    cin, cout = shape
    return (cout, cin)


def _median_time(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_jaxprune(reps: int) -> dict[str, float]:
    import jaxprune as jp

    key = jax.random.key(0)
    params = {}
    for i, (name, shape) in enumerate(resnet50_shapes()):
        params[name.replace("/", "_")] = {
            "kernel": jax.random.normal(jax.random.fold_in(key, i), shape, jnp.float32)
        }
    jax.block_until_ready(params)

    def masks():
        return jax.block_until_ready(jp.prune(params, "random_structured", key=key, amount=0.3))

    t0 = time.perf_counter()
    masks()
    first = time.perf_counter() - t0

    def masks_and_weights():
        m = jp.prune(params, "random_structured", key=key, amount=0.3)
        return jax.block_until_ready(jp.apply_masks(params, m))

    masks_and_weights()
    n_params = sum(x.size for x in jax.tree.leaves(params))
    return {
        "params": n_params,
        "first_call_s": first,
        "masks_s": _median_time(masks, reps),
        "masks_and_weights_s": _median_time(masks_and_weights, reps),
    }


def bench_torch(reps: int) -> dict[str, float]:
    import torch
    from torch.nn.utils import prune

    torch.manual_seed(0)
    shapes = [_to_torch_shape(s) for _, s in resnet50_shapes()]

    def make_modules():
        mods = []
        for s in shapes:
            m = torch.nn.Module()
            m.weight = torch.nn.Parameter(torch.randn(s))
            mods.append(m)
        return mods

    mods = make_modules()
    t0 = time.perf_counter()
    for m in mods:
        prune.random_structured(m, "weight", amount=0.3, dim=0)
    first = time.perf_counter() - t0

    def steady():
        for m in mods:
            prune.remove(m, "weight")
        t0 = time.perf_counter()
        for m in mods:
            prune.random_structured(m, "weight", amount=0.3, dim=0)
        return time.perf_counter() - t0

    for _ in range(2):
        steady()
    steady_s = statistics.median(steady() for _ in range(reps))

    method = prune.RandomStructured(amount=0.3, dim=0)
    weights = [m.weight.detach() for m in mods]
    ones = [torch.ones_like(w) for w in weights]

    def masks_only():
        for w, o in zip(weights, ones):
            method.compute_mask(w, o)

    return {
        "first_call_s": first,
        "steady_s": steady_s,
        "compute_mask_s": _median_time(masks_only, reps),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch_res = bench_torch(args.reps)
    jax_res = bench_jaxprune(args.reps)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "jaxprune": jax_res,
        "torch": torch_res,
        "ratio_masks_vs_torch_compute_mask": torch_res["compute_mask_s"] / jax_res["masks_s"],
        "ratio_masks_vs_torch_steady": torch_res["steady_s"] / jax_res["masks_s"],
        "ratio_masks_and_weights_vs_torch_steady": torch_res["steady_s"]
        / jax_res["masks_and_weights_s"],
    }
    rows = [
        ("jaxprune compile + first call (masks)", jax_res["first_call_s"]),
        ("jaxprune masks, steady (median)", jax_res["masks_s"]),
        ("jaxprune masks + pruned weights, steady", jax_res["masks_and_weights_s"]),
        ("torch prune.random_structured, first call", torch_res["first_call_s"]),
        ("torch prune.random_structured, steady", torch_res["steady_s"]),
        ("torch RandomStructured.compute_mask only", torch_res["compute_mask_s"]),
    ]
    print(f"ResNet-50 shapes, {jax_res['params'] / 1e6:.1f}M parameters, {result['machine']}")
    for label, seconds in rows:
        print(f"  {label:<45} {1e3 * seconds:9.2f} ms")
    print(
        f"  masks: {result['ratio_masks_vs_torch_compute_mask']:.1f}x faster than torch's "
        f"compute_mask, {result['ratio_masks_vs_torch_steady']:.1f}x than its steady prune"
    )
    print(
        f"  masks + weights: {result['ratio_masks_and_weights_vs_torch_steady']:.1f}x "
        "faster than torch's steady prune"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
