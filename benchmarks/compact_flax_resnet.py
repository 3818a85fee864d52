"""jp.compact on code we did not write: flax's own ImageNet ResNets.

Loads ``examples/imagenet/models.py`` from a checkout of google/flax (not vendored: pass its
path), builds ResNet18 and ResNet50 (10 classes, 64x64 inputs, batch 8, BatchNorm in
inference mode with perturbed statistics), prunes half the output channels of each block's
inner convolutions by L2 norm together with their BatchNorm's scale and bias, compacts, and
prints parameters, FLOPs, the largest relative difference from the masked model, and the
forward times (unpruned, masked, compacted; medians after warm-up).
Run: ``python -m benchmarks.compact_flax_resnet PATH/TO/flax/examples/imagenet/models.py``.
"""

from __future__ import annotations

import argparse
import importlib.util

import jax
import jax.numpy as jnp

import jaxprune as jp

from .suite import _measure


def _load(path: str):
    spec = importlib.util.spec_from_file_location("flax_imagenet_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perturbed(variables, key):
    leaves, treedef = jax.tree.flatten(variables)
    keys = jax.random.split(key, len(leaves))
    leaves = [a + 0.1 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)]
    out = jax.tree.unflatten(treedef, leaves)
    out["batch_stats"] = jax.tree.map(jnp.abs, out["batch_stats"])
    return out


def _inner_masks(variables, amount, inner):
    masks = jax.tree.map(lambda _: True, variables)
    for block, layers in variables["params"].items():
        if not block.startswith(("ResNetBlock", "BottleneckResNetBlock")):
            continue
        for conv, bn in inner:
            m = jp.ln_structured(layers[conv]["kernel"], amount, 2, dim=-1)
            masks["params"][block][conv]["kernel"] = m
            masks["params"][block][bn]["scale"] = masks["params"][block][bn]["bias"] = m.reshape(-1)
    return masks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compact_flax_resnet")
    parser.add_argument("models_py", help="flax's examples/imagenet/models.py")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    models = _load(args.models_py)
    cases = (
        ("ResNet18", models.ResNet18, [("Conv_0", "BatchNorm_0")]),
        ("ResNet50", models.ResNet50, [("Conv_0", "BatchNorm_0"), ("Conv_1", "BatchNorm_1")]),
    )
    print("| model | params | FLOPs | max rel. diff | unpruned | masked | compacted | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, ctor, inner in cases:
        model = ctor(num_classes=10)
        x = jax.random.normal(jax.random.key(0), (8, 64, 64, 3))
        variables = _perturbed(model.init(jax.random.key(1), x, train=False), jax.random.key(2))

        def apply(v, x, model=model):
            return model.apply(v, x, train=False)

        masks = _inner_masks(variables, 0.5, inner)
        fn, small, report = jp.compact(apply, variables, masks, x)
        masked = jp.apply_masks(variables, masks)
        full, compact = jax.jit(apply), jax.jit(fn)
        ref = full(masked, x)
        err = float(jnp.max(jnp.abs(ref - compact(small, x))) / jnp.max(jnp.abs(ref)))
        t_small, t_masked, t_dense = (
            _measure.median_time(lambda f=f, p=p, x=x: f(p, x), args.reps)
            for f, p in ((compact, small), (full, masked), (full, variables))
        )
        assert not report.kept, report.kept
        print(
            f"| {name}, inner convs 50% | {report.params_before / 1e6:.2f}M -> "
            f"{report.params_after / 1e6:.2f}M | {report.flops_before / 1e9:.2f}G -> "
            f"{report.flops_after / 1e9:.2f}G | {err:.1e} | {t_dense * 1e3:.1f} ms "
            f"| {t_masked * 1e3:.1f} ms | {t_small * 1e3:.1f} ms | {t_masked / t_small:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
