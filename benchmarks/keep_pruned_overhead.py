"""Per-step overhead of jaxprune.keep_pruned against the bare optax optimizer.

Two models, each trained with adamw through one jit-compiled step, once with the bare
optimizer and once wrapped by ``keep_pruned`` (masks from l1_unstructured 0.5 on every
kernel, and from random_structured 0.5 for the structured case):

  demo CNN      the demo's digits CNN (137K parameters), batch 64
  GPT-2-small   an MLP stack shaped like GPT-2-small's 12 blocks (d=768: 768->3072->768),
                57M parameters, batch of 8 x 64 tokens

Medians over repetitions after warm-up (compilation excluded), all in one process, the
variants' steps interleaved so that a noisy neighbour slows them alike.
Run: ``python -m benchmarks.keep_pruned_overhead [--reps N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import jaxprune as jp


def _time_interleaved(variants, batch, reps):
    """Median seconds per step of each (step, params, state), their steps interleaved."""
    live = [list(v) for v in variants]
    for v in live:
        for _ in range(3):
            v[1], v[2] = v[0](v[1], v[2], *batch)
        jax.block_until_ready(v[1])
    times = [[] for _ in live]
    for _ in range(reps):
        for i, v in enumerate(live):
            t0 = time.perf_counter()
            v[1], v[2] = v[0](v[1], v[2], *batch)
            jax.block_until_ready(v[1])
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _step(loss_fn, tx):
    @jax.jit
    def step(params, state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def cnn_case():
    from examples import demo

    model = demo._cnn()
    params = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
    x = jax.random.normal(jax.random.key(1), (64, 8, 8, 1))
    y = jnp.arange(64) % 10

    def loss_fn(p, x, y):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return params, loss_fn, (x, y)


def mlp_case():
    key = jax.random.key(0)
    params = {}
    for i in range(12):
        k1, k2, key = jax.random.split(key, 3)
        params[f"block_{i}"] = {
            "fc": {"kernel": jax.random.normal(k1, (768, 3072)) * 0.02, "bias": jnp.zeros(3072)},
            "proj": {"kernel": jax.random.normal(k2, (3072, 768)) * 0.02, "bias": jnp.zeros(768)},
        }
    x = jax.random.normal(key, (8 * 64, 768))

    def loss_fn(p, x, y):
        h = x
        for i in range(12):
            b = p[f"block_{i}"]
            h = h + jax.nn.gelu(h @ b["fc"]["kernel"] + b["fc"]["bias"]) @ b["proj"]["kernel"]
        return jnp.mean((h - y) ** 2)

    return params, loss_fn, (x, x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"{platform.machine()} {os.cpu_count()} cpus, jax {jax.__version__}")
    for name, case in (("demo CNN", cnn_case), ("GPT-2-small MLP stack", mlp_case)):
        params, loss_fn, batch = case()
        n = sum(x.size for x in jax.tree.leaves(params))
        labels = ["bare adamw"]
        txs = [optax.adamw(1e-3, weight_decay=1e-4)]
        for label, masks in (
            ("l1_unstructured 0.5", jp.prune(params, "l1_unstructured", amount=0.5)),
            (
                "random_structured 0.5",
                jp.prune(params, "random_structured", key=jax.random.key(0), amount=0.5),
            ),
        ):
            labels.append(f"keep_pruned, {label} masks")
            txs.append(jp.keep_pruned(optax.adamw(1e-3, weight_decay=1e-4), masks))
        variants = [(_step(loss_fn, tx), params, tx.init(params)) for tx in txs]
        times = _time_interleaved(variants, batch, args.reps)
        print(f"{name} ({n / 1e6:.2f}M params)")
        for label, t in zip(labels, times):
            print(f"  {label:<42} {1e3 * t:8.2f} ms/step   ratio {t / times[0]:.3f}")


if __name__ == "__main__":
    main()
