"""The demo: train a small CNN on scikit-learn's digits, prune it, fine-tune, compare.

For amounts 0 to 0.9 it prunes the trained CNN with random_structured, ln_structured (L2) and
l1_unstructured, measures test accuracy before and after a short fine-tune through
:func:`jaxprune.keep_pruned`, does the same for 2:4 sparsity (``nm_unstructured``, the
layers with inputs in groups of 4), runs one gradual-pruning fine-tune, removes the pruned
channels of a structurally pruned copy for real (:func:`jaxprune.compact`: fewer parameters,
the same accuracy, a faster forward pass), shows that the PyTorch twin
of the CNN pruned through ``torch_compat`` with the same key loses the same channels, and
writes ``results.json`` and ``accuracy.png`` to an output folder.

Run: ``python -m examples.demo [--quick] [--out DIR] [--seed S]`` from the repository root
(``make demo``).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxprune as jp

#: The classifier (Dense_1) is left alone: pruning its output channels would delete classes.
WHERE = r"^(Conv_0|Conv_1|Dense_0)/kernel$"
#: 2:4 sparsity groups the input axis; Conv_0 has a single input channel (no group of 4).
NM_WHERE = r"^(Conv_1|Dense_0)/kernel$"
METHODS = (
    ("random_structured", {"dim": -1}),
    ("ln_structured", {"n": 2, "dim": -1}),
    ("l1_unstructured", {}),
)


def _cnn():
    import flax.linen as nn

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (3, 3))(x))
            x = nn.relu(nn.Conv(32, (3, 3))(x))
            x = x.reshape((x.shape[0], -1))
            x = nn.relu(nn.Dense(64)(x))
            return nn.Dense(10)(x)

    return CNN()


def load_digits(seed: int = 0):
    """scikit-learn's bundled 8x8 digits (no download), split 80/20."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def _trainer(model, tx):
    import optax

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = model.apply({"params": p}, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def _epochs(step, params, opt_state, data, epochs, seed, batch=64):
    x, y = data
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y) - batch + 1, batch):
            idx = order[i : i + batch]
            params, opt_state, _ = step(params, opt_state, x[idx], y[idx])
    return params, opt_state


def _accuracy(model, params, data) -> float:
    logits = jax.jit(lambda p, x: model.apply({"params": p}, x))(params, data[0])
    return float(jnp.mean(jnp.argmax(logits, -1) == data[1]))


def _kept(params, masks) -> int:
    pruned = jp.apply_masks(params, masks)
    return int(sum(int(jnp.count_nonzero(x)) for x in jax.tree.leaves(pruned)))


def compact_check(model, params, train, test, epochs: int, seed: int) -> dict[str, Any]:
    """Prune half the channels of every hidden layer (ln_structured, L2, the biases of the
    pruned channels with them), fine-tune through keep_pruned, then remove the pruned
    channels for real with :func:`jaxprune.compact`: parameters, accuracy (the same as the
    masked model's) and the forward pass's speed-up on the test set (medians)."""
    import optax

    masks = jp.prune(params, "ln_structured", amount=0.5, n=2, dim=-1, where=WHERE)
    for layer in ("Conv_0", "Conv_1", "Dense_0"):
        masks[layer]["bias"] = masks[layer]["kernel"].reshape(-1)
    pruned = jp.apply_masks(params, masks)
    tx = jp.keep_pruned(optax.adam(1e-3), masks)
    tuned, _ = _epochs(_trainer(model, tx), pruned, tx.init(pruned), train, epochs, seed + 2)

    def apply(p, x):
        return model.apply({"params": p}, x)

    fn, small, report = jp.compact(apply, tuned, masks, test[0])
    masked_fn, compact_fn = jax.jit(apply), jax.jit(fn)
    logits = compact_fn(small, test[0])
    times = {}
    for name, f, p in (("masked", masked_fn, tuned), ("compact", compact_fn, small)):
        jax.block_until_ready(f(p, test[0]))
        runs = []
        for _ in range(20):
            t0 = time.perf_counter()
            jax.block_until_ready(f(p, test[0]))
            runs.append(time.perf_counter() - t0)
        times[name] = float(np.median(runs))
    return {
        "params_before": report.params_before,
        "params_after": report.params_after,
        "flops_before": report.flops_before,
        "flops_after": report.flops_after,
        "accuracy": float(jnp.mean(jnp.argmax(logits, -1) == test[1])),
        "accuracy_masked": _accuracy(model, tuned, test),
        "masked_ms": times["masked"] * 1e3,
        "compact_ms": times["compact"] * 1e3,
        "speedup": times["masked"] / times["compact"],
        "kept": report.kept,
    }


def torch_twin_check(params, key, amount: float = 0.3) -> list[dict[str, Any]]:
    """Prune the PyTorch twin of the CNN through torch_compat with the leaf keys jaxprune
    used, and compare the channels removed per layer."""
    import torch

    from torch_compat import prune as tprune

    masks = jp.prune(params, "random_structured", key=key, where=WHERE, amount=amount)
    rows = []
    for path in ("Conv_0/kernel", "Conv_1/kernel", "Dense_0/kernel"):
        layer = path.split("/")[0]
        kernel = np.asarray(params[layer]["kernel"])
        if kernel.ndim == 4:  # Flax (kh, kw, in, out) -> torch (out, in, kh, kw)
            module = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2])
            weight = kernel.transpose(3, 2, 0, 1)
        else:  # Flax (in, out) -> torch (out, in)
            module = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
            weight = kernel.T
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        tprune.random_structured(module, "weight", amount=amount, dim=0, key=jp.leaf_key(key, path))
        torch_dead = (module.weight_mask.flatten(1).sum(1) == 0).numpy()
        flax_dead = ~np.asarray(masks[layer]["kernel"]).reshape(-1)
        rows.append(
            {
                "layer": layer,
                "channels": int(flax_dead.size),
                "removed": int(flax_dead.sum()),
                "same": bool((torch_dead == flax_dead).all()),
            }
        )
    return rows


def run(
    out_dir: str = "jaxprune-demo",
    *,
    quick: bool = False,
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Run the demo; returns the results that it also writes to ``out_dir/results.json``."""
    import optax
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = console or Console(width=max(Console().width, 110))
    t_start = time.perf_counter()
    train, test = load_digits(seed)
    if quick:
        train = (train[0][:512], train[1][:512])
    model = _cnn()
    key = jax.random.key(seed)
    params = model.init(key, jnp.zeros((1, 8, 8, 1)))["params"]
    base_tx = optax.adam(3e-3)
    epochs, finetune_epochs = (3, 1) if quick else (12, 3)
    amounts = (0.0, 0.5, 0.9) if quick else tuple(round(0.1 * i, 1) for i in range(10))

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training the CNN", total=1)
        params, _ = _epochs(
            _trainer(model, base_tx), params, base_tx.init(params), train, epochs, seed
        )
        progress.advance(task)
    dense_acc = _accuracy(model, params, test)
    console.print(
        f"trained CNN: test accuracy {dense_acc:.3f} "
        f"({sum(x.size for x in jax.tree.leaves(params))} parameters)"
    )

    rows = []
    total = len(METHODS) * len(amounts)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("pruning and fine-tuning", total=total)
        for name, kwargs in METHODS:
            for amount in amounts:
                t0 = time.perf_counter()
                method_key = key if name.startswith("random") else None
                masks = jp.prune(params, name, key=method_key, where=WHERE, amount=amount, **kwargs)
                pruned = jp.apply_masks(params, masks)
                before = _accuracy(model, pruned, test)
                tx = jp.keep_pruned(optax.adam(1e-3), masks)
                tuned, _ = _epochs(
                    _trainer(model, tx), pruned, tx.init(pruned), train, finetune_epochs, seed + 1
                )
                after = _accuracy(model, tuned, test)
                rows.append(
                    {
                        "method": name,
                        "amount": amount,
                        "sparsity": jp.sparsity(
                            {k: params[k]["kernel"] for k in ("Conv_0", "Conv_1", "Dense_0")},
                            {k: masks[k]["kernel"] for k in ("Conv_0", "Conv_1", "Dense_0")},
                        ),
                        "params_left": _kept(tuned, masks),
                        "accuracy_before_finetune": before,
                        "accuracy_after_finetune": after,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                progress.advance(task)

        # 2:4 sparsity (sparse tensor cores), one shot, then the same fine-tune.
        t0 = time.perf_counter()
        masks = jp.prune(params, "nm_unstructured", n=2, m=4, where=NM_WHERE)
        pruned = jp.apply_masks(params, masks)
        before = _accuracy(model, pruned, test)
        tx = jp.keep_pruned(optax.adam(1e-3), masks)
        tuned, _ = _epochs(
            _trainer(model, tx), pruned, tx.init(pruned), train, finetune_epochs, seed + 1
        )
        layers = ("Conv_1", "Dense_0")
        nm = {
            "method": "nm_unstructured 2:4",
            "sparsity": jp.sparsity(
                {k: params[k]["kernel"] for k in ("Conv_0", "Conv_1", "Dense_0")},
                {k: masks[k]["kernel"] for k in ("Conv_0", "Conv_1", "Dense_0")},
            ),
            "is_2_4": all(jp.is_nm(tuned[k]["kernel"], 2, 4) for k in layers),
            "params_left": _kept(tuned, masks),
            "accuracy_before_finetune": before,
            "accuracy_after_finetune": _accuracy(model, tuned, test),
            "seconds": time.perf_counter() - t0,
        }

        # Gradual pruning to 80% during the fine-tune, instead of one shot before it.
        steps = finetune_epochs * (len(train[1]) // 64)
        schedule = jp.polynomial_schedule(
            0.0, 0.8, 0, max(steps - 1, 1), frequency=max(steps // 8, 1)
        )
        tx = jp.gradual_pruning(optax.adam(1e-3), "l1_unstructured", schedule, where=WHERE)
        t0 = time.perf_counter()
        tuned, state = _epochs(
            _trainer(model, tx), params, tx.init(params), train, finetune_epochs, seed + 1
        )
        masks = jp.current_masks(state)
    gradual = {
        "method": "gradual l1_unstructured",
        "final_sparsity": 0.8,
        "sparsity": jp.sparsity({k: tuned[k]["kernel"] for k in ("Conv_0", "Conv_1", "Dense_0")}),
        "params_left": _kept(tuned, masks),
        "accuracy": _accuracy(model, tuned, test),
        "seconds": time.perf_counter() - t0,
    }

    table = Table(
        title="Pruning the digits CNN (test accuracy)",
        caption="time: pruning, fine-tuning and evaluation of the row; a method's first row "
        "also compiles its programs (XLA), so it takes longer than the rows after it",
    )
    for col in ("method", "amount", "sparsity", "params left", "before FT", "after FT", "time"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        table.add_row(
            r["method"],
            f"{r['amount']:.1f}",
            f"{r['sparsity']:.2f}",
            str(r["params_left"]),
            f"{r['accuracy_before_finetune']:.3f}",
            f"{r['accuracy_after_finetune']:.3f}",
            f"{r['seconds']:.2f}s",
        )
    table.add_row(
        nm["method"] + ("" if nm["is_2_4"] else " (NOT 2:4)"),
        "2:4",
        f"{nm['sparsity']:.2f}",
        str(nm["params_left"]),
        f"{nm['accuracy_before_finetune']:.3f}",
        f"{nm['accuracy_after_finetune']:.3f}",
        f"{nm['seconds']:.2f}s",
    )
    table.add_row(
        gradual["method"],
        "0.8",
        f"{gradual['sparsity']:.2f}",
        str(gradual["params_left"]),
        "-",
        f"{gradual['accuracy']:.3f}",
        f"{gradual['seconds']:.2f}s",
    )
    console.print(table)

    compacted = compact_check(model, params, train, test, finetune_epochs, seed)
    console.print(
        f"compacted CNN (ln_structured 0.5 with its biases, fine-tuned, then jp.compact): "
        f"{compacted['params_after']} parameters instead of {compacted['params_before']}, "
        f"test accuracy {compacted['accuracy']:.3f} (masked model: "
        f"{compacted['accuracy_masked']:.3f}), forward pass {compacted['speedup']:.2f}x "
        f"faster ({compacted['masked_ms']:.2f} ms -> {compacted['compact_ms']:.2f} ms, "
        f"{len(test[1])} images)"
    )

    try:
        twin = torch_twin_check(params, key)
    except ImportError:
        twin = []
        console.print("torch is not installed: skipping the torch twin.")
    for r in twin:
        verdict = "the same" if r["same"] else "DIFFERENT"
        console.print(
            f"torch twin, {r['layer']}: {r['removed']} of {r['channels']} channels "
            f"removed, {verdict} as in Flax (random_structured 0.3, same key)"
        )

    results = {
        "dense_accuracy": dense_acc,
        "rows": rows,
        "nm": nm,
        "gradual": gradual,
        "compact": compacted,
        "torch_twin": twin,
        "seconds": time.perf_counter() - t_start,
        "quick": quick,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    _plot(rows, nm, gradual, dense_acc, os.path.join(out_dir, "accuracy.png"))
    console.print(
        f"wrote {out_dir}/results.json and {out_dir}/accuracy.png in {results['seconds']:.1f}s"
    )
    return results


def _plot(rows, nm, gradual, dense_acc: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, field, title in zip(
        axes,
        ("accuracy_before_finetune", "accuracy_after_finetune"),
        ("one-shot, no fine-tune", "after a short fine-tune (keep_pruned)"),
    ):
        for name, _ in METHODS:
            pts = [(r["sparsity"], r[field]) for r in rows if r["method"] == name]
            ax.plot(*zip(*pts), marker="o", label=name)
        ax.plot([nm["sparsity"]], [nm[field]], marker="D", linestyle="none", label=nm["method"])
        ax.axhline(dense_acc, color="gray", linestyle=":", label="dense")
        ax.set_title(title)
        ax.set_xlabel("sparsity of the pruned kernels")
    axes[1].plot(
        [gradual["sparsity"]],
        [gradual["accuracy"]],
        marker="*",
        markersize=14,
        linestyle="none",
        label="gradual l1_unstructured (pruned while fine-tuning)",
    )
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(fontsize=8)
    fig.suptitle(
        "jaxprune: a small Flax CNN on scikit-learn's digits (8x8 images, 10 classes), "
        "pruned at amounts 0 to 0.9"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m examples.demo",
        description="Train, prune and fine-tune a small CNN on scikit-learn's digits.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a fast, smaller run")
    parser.add_argument("--out", default="jaxprune-demo", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split and keys")
    args = parser.parse_args(argv)
    run(args.out, quick=args.quick, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
