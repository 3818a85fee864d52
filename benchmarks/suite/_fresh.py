"""Workloads measured in a fresh process each (W1/W2 first calls, W6 memory, W7 rounds,
torch's side of W2's global pruning, jaxprune's W2 masks + weights without torch tensors).

A first call in a fresh process pays what a one-shot user pays: compilation (jaxprune,
torch_compat) and the page faults of freshly allocated masks and copies (all three). Memory
is the process's resident size above its size before the model was built, as a multiple of
the parameter bytes; the peak is the high-water mark during the pruning call.

Run by the suite as ``python -m benchmarks.suite._fresh JOB LIB SIZE`` (one JSON line out).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

from . import _measure, _models


def _shapes(model: str, size: dict[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    if model == "resnet50":
        return _models.resnet50_shapes(size["width"])
    return _models.gpt2_shapes(size["blocks"], size["scale"])


def _torch_modules(shapes: list[tuple[str, tuple[int, ...]]]) -> list[Any]:
    import torch

    torch.manual_seed(0)
    mods = []
    for _, shape in shapes:
        m = torch.nn.Module()
        m.weight = torch.nn.Parameter(torch.randn(_models.torch_shape(shape)))
        mods.append(m)
    return mods


def _prune_module(lib: str):
    if lib == "torch":
        from torch.nn.utils import prune
    else:
        from torch_compat import prune
    return prune


def first_call(lib: str, model: str, size: dict[str, int]) -> dict[str, Any]:
    """random_structured(0.3) masks + pruned weights, the first call of a fresh process.

    Held memory is counted exactly: the bytes of every live array afterwards (jaxprune:
    ``jax.live_arrays()``; torch: the modules' parameters, buffers and ``weight``). The peak is
    the resident high-water mark during the call, above the process before the model was
    built; for jaxprune the compiler's own heap (the resident growth of the masks call, which
    allocates no more than the masks) is measured apart and left out of ``peak_x``."""
    shapes = _shapes(model, size)
    nbytes = 4 * sum(_models.Model.size(s) for _, s in shapes)
    compile_heap = 0
    if lib == "jaxprune":
        import jax

        import jaxprune as jp

        base = _measure.rss()
        params = _models.Model(shapes, torch_side=False).params
        key = jax.random.key(0)
        before = _measure.rss()
        _measure.reset_peak()
        t0 = time.perf_counter()
        masks = jp.prune(params, "random_structured", key=key, amount=0.3)
        jax.block_until_ready(masks)
        seconds = time.perf_counter() - t0
        compile_heap = max(0, _measure.rss() - before)
        t0 = time.perf_counter()
        pruned = jp.apply_masks(params, masks, donate=True)
        jax.block_until_ready(pruned)
        seconds += time.perf_counter() - t0
        del params
        peak = _measure.peak()
        mask_bytes = sum(m.nbytes for m in jax.tree.leaves(masks))
        held = sum(x.nbytes for x in jax.live_arrays())
    else:
        prune = _prune_module(lib)
        base = _measure.rss()
        modules = _torch_modules(shapes)
        _measure.reset_peak()
        t0 = time.perf_counter()
        for m in modules:
            prune.random_structured(m, "weight", amount=0.3, dim=0)
        seconds = time.perf_counter() - t0
        peak = _measure.peak()
        mask_bytes = sum(m.weight_mask.nbytes for m in modules)
        held = sum(
            sum(t.nbytes for t in m.parameters())
            + sum(t.nbytes for t in m.buffers())
            + m.weight.nbytes
            for m in modules
        )
    return {
        "first_s": seconds,
        "held_x": held / nbytes,
        "peak_x": (peak - base - compile_heap) / nbytes,
        "peak_resident_x": (peak - base) / nbytes,
        "compile_heap_bytes": compile_heap,
        "mask_pct": 100 * mask_bytes / nbytes,
        "nbytes": nbytes,
    }


def rounds(lib: str, model: str, size: dict[str, int], n_rounds: int) -> dict[str, Any]:
    """n_rounds iterative rounds of random_structured(0.2): time per round, masks alone and
    masks + pruned weights, and memory held after the last round."""
    shapes = _shapes(model, size)
    nbytes = 4 * sum(_models.Model.size(s) for _, s in shapes)
    masks_s, both_s = [], []
    if lib == "jaxprune":
        import jax

        import jaxprune as jp

        base = _measure.rss()
        pruned = _models.Model(shapes, torch_side=False).params
        key = jax.random.key(0)
        masks = None
        for r in range(n_rounds):
            k = jax.random.fold_in(key, r)
            masks_s.append(
                _measure.once(
                    lambda k=k, p=pruned, m=masks: jp.prune(
                        p, "random_structured", key=k, amount=0.2, masks=m
                    )
                )
            )
            t0 = time.perf_counter()
            masks = jp.prune(pruned, "random_structured", key=k, amount=0.2, masks=masks)
            pruned = jp.apply_masks(pruned, masks, donate=True)
            jax.block_until_ready((masks, pruned))
            both_s.append(time.perf_counter() - t0)
    else:
        import torch

        prune = _prune_module(lib)
        base = _measure.rss()
        modules = _torch_modules(shapes)
        for _ in range(n_rounds):
            prev = [getattr(m, "weight_mask", None) for m in modules]
            t0 = time.perf_counter()
            for m in modules:
                prune.random_structured(m, "weight", amount=0.2, dim=0)
            both_s.append(time.perf_counter() - t0)
            hooks = [_hook(m, prune) for m in modules]
            t0 = time.perf_counter()
            for m, h, p in zip(modules, hooks, prev):
                h.compute_mask(m.weight_orig, torch.ones_like(m.weight_orig) if p is None else p)
            masks_s.append(time.perf_counter() - t0)
    # The first two rounds compile jaxprune's programs (without, then with prior masks).
    return {
        "round_masks_s": statistics.median(masks_s[2:] or masks_s),
        "round_both_s": statistics.median(both_s[2:] or both_s),
        "first_round_masks_s": masks_s[0],
        "first_round_both_s": both_s[0],
        "held_x": (_measure.rss() - base) / nbytes,
        "nbytes": nbytes,
    }


def steady(model: str, size: dict[str, int], reps: int) -> dict[str, Any]:
    """jaxprune's random_structured(0.3) masks + pruned weights, steady state, in a process
    that holds the JAX model alone (as a jaxprune user's does), and the memcpy floor timed
    in the same process: a check that the suite's figure for the same call owes nothing to
    the suite's process (the torch twin of the model, the workloads run before it)."""
    _measure.keep_freed_memory()  # before XLA starts its threads

    import jax

    import jaxprune as jp

    shapes = _shapes(model, size)
    params = _models.Model(shapes, torch_side=False).params
    nbytes = 4 * sum(_models.Model.size(s) for _, s in shapes)
    key = jax.random.key(0)

    def run():
        masks = jp.prune(params, "random_structured", key=key, amount=0.3)
        return masks, jp.apply_masks(params, masks)

    return {
        "steady_s": _measure.median_time(run, reps, warmup=2),
        "memcpy_s": _measure.memcpy_time(nbytes, max(reps, 3)),
        "nbytes": nbytes,
    }


def global_l1(lib: str, model: str, size: dict[str, int], reps: int) -> dict[str, Any]:
    """torch's global_unstructured L1 0.5 over every weight: its first call and the median
    of ``reps`` more after undoing it (in a process of its own: torch's peak is about ten
    times the parameter bytes)."""
    shapes = _shapes(model, size)
    nbytes = 4 * sum(_models.Model.size(s) for _, s in shapes)
    prune = _prune_module(lib)
    base = _measure.rss()
    modules = _torch_modules(shapes)
    params = [(m, "weight") for m in modules]

    def run():
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)

    _measure.reset_peak()
    first = _measure.once(run)
    peak = _measure.peak()
    steady = _measure.median_time(run, reps, warmup=0, setup=lambda: _models.unprune_all(modules))
    return {
        "first_s": first,
        "steady_s": steady,
        "peak_x": (peak - base) / nbytes,
        "pruned": sum(int((m.weight_mask == 0).sum()) for m in modules),
        "nbytes": nbytes,
    }


def _hook(module: Any, prune: Any) -> Any:
    from torch.nn.utils import prune as torch_prune

    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, torch_prune.BasePruningMethod) and hook._tensor_name == "weight":
            return hook
    raise RuntimeError("module is not pruned")


def main(argv: list[str]) -> None:
    job, lib, model, size = argv[0], argv[1], argv[2], json.loads(argv[3])
    if size.get("cache_dir"):  # JAX's persistent compilation cache, for every program
        import jax

        jax.config.update("jax_compilation_cache_dir", size["cache_dir"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if job == "first":
        out = first_call(lib, model, size)
    elif job == "steady":
        out = steady(model, size, size["reps"])
    elif job == "global":
        out = global_l1(lib, model, size, size["reps"])
    else:
        out = rounds(lib, model, size, size["rounds"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
    # Leave without the interpreter's teardown: with torch's and XLA's thread pools both alive
    # it sometimes aborts ("terminate called without an active exception") after the result
    # is out.
    sys.stderr.flush()
    os._exit(0)
