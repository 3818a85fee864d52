"""256 seeds of random_structured(0.3) masks for one 4096x4096 weight: a torch loop against
one jaxprune vmap over keys (workload W4 of the planned suite).

torch: ``RandomStructured(0.3, dim=0).compute_mask`` once per seed (each call draws its
channels and writes a full 64 MB float mask). jaxprune: ``jax.vmap`` of
``jp.random_structured`` over 256 keys, one compiled call producing 256 keepdims masks
(256 x 4096 booleans). Medians after warm-up, compile time apart, in one process.
Run: ``python -m benchmarks.seeds_vmap [--reps N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import torch
import torch.nn.utils.prune as tprune

import jaxprune as jp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=256)
    args = parser.parse_args(argv)

    weight = torch.randn(4096, 4096)
    ones = torch.ones_like(weight)
    method = tprune.RandomStructured(amount=0.3, dim=0)

    def torch_loop():
        for s in range(args.seeds):
            torch.manual_seed(s)
            method.compute_mask(weight, ones)

    x = jnp.zeros((4096, 4096))
    keys = jax.random.split(jax.random.key(0), args.seeds)
    many = jax.jit(jax.vmap(lambda k: jp.random_structured(k, x, 0.3, dim=0)))
    t0 = time.perf_counter()
    jax.block_until_ready(many(keys))
    compile_s = time.perf_counter() - t0

    def jax_vmap():
        jax.block_until_ready(many(keys))

    def median(fn):
        fn()
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    torch_s, jax_s = median(torch_loop), median(jax_vmap)
    print(f"{platform.machine()} {os.cpu_count()} cpus, {args.seeds} seeds, 4096x4096")
    print(f"  torch RandomStructured.compute_mask loop  {torch_s * 1e3:10.1f} ms")
    print(
        f"  jaxprune vmap (compiled)                  {jax_s * 1e3:10.3f} ms "
        f"(compile + first call {compile_s * 1e3:.0f} ms)"
    )
    print(f"  ratio {torch_s / jax_s:.0f}x")


if __name__ == "__main__":
    main()
