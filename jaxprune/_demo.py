"""The demo: prune a small Flax CNN with every method and show what each one removed."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from . import _report, _tree

METHODS = (
    ("random_unstructured", {"amount": 0.5}),
    ("l1_unstructured", {"amount": 0.5}),
    ("random_structured", {"amount": 0.3, "dim": -1}),
    ("ln_structured", {"amount": 0.3, "n": 2, "dim": -1}),
)


def cnn_params(seed: int = 0):
    """Parameters of a small linen CNN for 8x8 digits (two convs, two dense layers)."""
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (3, 3))(x))
            x = nn.relu(nn.Conv(32, (3, 3))(x))
            x = x.reshape((x.shape[0], -1))
            x = nn.relu(nn.Dense(64)(x))
            return nn.Dense(10)(x)

    return CNN().init(jax.random.key(seed), jnp.zeros((1, 8, 8, 1)))["params"]


def run(seed: int = 0, out=print) -> dict[str, float]:
    """Prune the CNN's kernels with each method; print a per-layer table; return sparsities."""
    params = cnn_params(seed)
    key = jax.random.key(seed)
    results = {}
    for name, kwargs in METHODS:
        t0 = time.perf_counter()
        random = name.startswith("random")
        masks = _tree.prune(params, name, key=key if random else None, **kwargs)
        jax.block_until_ready(masks)
        elapsed = time.perf_counter() - t0
        args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        out(f"\n{name}({args})  [{1e3 * elapsed:.1f} ms, compile included]")
        out(_report.format_report(_report.report(params, masks)))
        results[name] = _tree.sparsity(params, masks)
    return results
