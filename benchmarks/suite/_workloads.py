"""The in-process workloads (W1-W5, W8): each measures jaxprune, torch_compat and
torch.nn.utils.prune side by side on the same shapes and values.

torch and torch_compat prune torch modules; between repetitions their pruning is undone
outside the clock (:func:`~benchmarks.suite._models.unprune`), so each repetition is torch's
steady state: re-pruning when its allocator reuses the memory it freed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from . import _measure, _models
from ._rows import Row, Target


@dataclasses.dataclass
class Context:
    """Sizes, repetitions and shared state of one suite run."""

    quick: bool
    reps: int  # light workloads
    heavy_reps: int  # workloads of seconds per call
    progress: Callable[[str], None]
    fresh: Callable[..., dict[str, Any]]
    memcpy: dict[int, float] = dataclasses.field(default_factory=dict)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    def memcpy_s(self, nbytes: int) -> float:
        if nbytes not in self.memcpy:
            self.memcpy[nbytes] = _measure.memcpy_time(nbytes, max(self.reps, 3))
        return self.memcpy[nbytes]

    # Sizes: the shapes, or small ones with the same structure for --quick.
    @property
    def gpt2_blocks(self) -> int:
        return 2 if self.quick else 24

    @property
    def gpt2_scale(self) -> int:
        return 8 if self.quick else 1

    @property
    def resnet_width(self) -> int:
        return 8 if self.quick else 64

    @property
    def big(self) -> int:
        return 512 if self.quick else 4096

    def label(self, wid: str) -> str:
        """The workload column of W1 and W2."""
        if wid == "W1":
            shapes = _models.resnet50_shapes(self.resnet_width)
            what = (
                "ResNet-50" if self.resnet_width == 64 else f"ResNet-50 width {self.resnet_width}"
            )
        else:
            shapes = _models.gpt2_shapes(self.gpt2_blocks, self.gpt2_scale)
            d = 1024 // self.gpt2_scale
            what = f"GPT-2-medium stack, {self.gpt2_blocks} blocks, d={d}"
        n = sum(_models.Model.size(s) for _, s in shapes)
        return f"{wid} {what} ({n / 1e6:.3g}M params, {len(shapes)} weights)"

    def gpt2(self) -> _models.Model:
        if "gpt2" not in self.cache:
            self.progress(f"building the GPT-2-medium stack ({self.gpt2_blocks} blocks)")
            shapes = _models.gpt2_shapes(self.gpt2_blocks, self.gpt2_scale)
            self.cache["gpt2"] = _models.Model(shapes)
        return self.cache["gpt2"]


def _libs():
    from torch.nn.utils import prune as torch_prune

    from torch_compat import prune as compat_prune

    return {"torch_compat": compat_prune, "torch": torch_prune}


def _torch_loop(modules: list[Any], call: Callable[[Any], None]) -> Callable[[], None]:
    def run():
        for m in modules:
            call(m)

    return run


def _steady(ctx: Context, modules: list[Any], run: Callable[[], Any], reps: int) -> float:
    return _measure.median_time(run, reps, setup=lambda: _models.unprune_all(modules))


def _compute_mask_loop(prune: Any, modules: list[Any], make: Callable[[Any], Any]):
    import torch

    weights = [m.weight.detach() for m in modules]
    ones = [torch.ones_like(w) for w in weights]
    methods = [make(prune) for _ in weights]

    def run():
        return [meth.compute_mask(w, o) for meth, w, o in zip(methods, weights, ones)]

    return run


def _masks_and_weights_rows(
    ctx: Context,
    model: _models.Model,
    wid: str,
    workload: str,
    what: str,
    jax_call: Callable[[], Any],
    torch_call: Callable[[Any, Any], None],
    reps: int,
    targets: list[Target] | None = None,
) -> Row:
    """jaxprune's masks and pruned weights against torch's prune call on every module."""
    import jaxprune as jp

    def jax_run():
        masks = jax_call()
        return masks, jp.apply_masks(model.params, masks)

    row = Row(wid, workload, what, nbytes=model.nbytes, targets=targets or [])
    row.extra["jaxprune_first_s"] = _measure.once(jax_run)
    row.jaxprune = _measure.median_time(jax_run, reps, warmup=2)
    for lib, prune in _libs().items():
        ctx.progress(f"{wid}: {lib}")
        run = _torch_loop(model.modules, lambda m, prune=prune: torch_call(prune, m))
        setattr(row, lib, _steady(ctx, model.modules, run, reps))
        _models.unprune_all(model.modules)
    row.memcpy_s = ctx.memcpy_s(model.nbytes)
    return row


def w1_resnet50(ctx: Context) -> list[Row]:
    import jaxprune as jp

    ctx.progress("W1: building ResNet-50")
    model = _models.Model(_models.resnet50_shapes(ctx.resnet_width))
    key = jax.random.key(0)
    name = ctx.label("W1")

    def masks():
        return jp.prune(model.params, "random_structured", key=key, amount=0.3)

    rows = []
    row = Row("w1_masks", name, "random_structured(0.3) masks", nbytes=model.nbytes)
    row.extra["jaxprune_first_s"] = _measure.once(masks)
    row.jaxprune = _measure.median_time(masks, ctx.reps)
    for lib, prune in _libs().items():
        run = _compute_mask_loop(prune, model.modules, lambda p: p.RandomStructured(0.3, dim=0))
        setattr(row, lib, _measure.median_time(run, ctx.reps))
    row.memcpy_s = ctx.memcpy_s(model.nbytes)
    row.notes = "torch: RandomStructured.compute_mask per weight"
    rows.append(row)

    rows.append(
        _masks_and_weights_rows(
            ctx,
            model,
            "w1_masks_weights",
            name,
            "random_structured(0.3) masks + pruned weights",
            masks,
            lambda p, m: p.random_structured(m, "weight", amount=0.3, dim=0),
            ctx.reps,
        )
    )

    row = Row("w1_remove", name, "remove (make the pruning permanent)")
    for lib, prune in _libs().items():

        def prune_all(prune=prune):
            _models.unprune_all(model.modules)
            for m in model.modules:
                prune.random_structured(m, "weight", amount=0.3, dim=0)

        run = _torch_loop(model.modules, lambda m, prune=prune: prune.remove(m, "weight"))
        setattr(row, lib, _measure.median_time(run, ctx.reps, setup=prune_all))
    row.notes = "jaxprune has nothing to remove: apply_masks (in the row above) is the whole job"
    rows.append(row)
    return rows


def w2_gpt2(ctx: Context) -> list[Row]:
    import jaxprune as jp

    model = ctx.gpt2()
    key = jax.random.key(0)
    wl = ctx.label("W2")

    def rs_masks():
        return jp.prune(model.params, "random_structured", key=key, amount=0.3)

    ctx.progress("W2: random_structured masks")
    row = Row(
        "w2_rs_masks",
        wl,
        "random_structured(0.3) masks",
        nbytes=model.nbytes,
        targets=[Target("ratio>=", 30)],
        notes="torch: RandomStructured.compute_mask per weight",
    )
    row.extra["jaxprune_first_s"] = _measure.once(rs_masks)
    row.jaxprune = _measure.median_time(rs_masks, ctx.reps)
    for lib, prune in _libs().items():
        run = _compute_mask_loop(prune, model.modules, lambda p: p.RandomStructured(0.3, dim=0))
        setattr(row, lib, _measure.median_time(run, ctx.heavy_reps))
    row.memcpy_s = ctx.memcpy_s(model.nbytes)
    rows = [row]

    specs = [
        (
            "w2_rs",
            "random_structured(0.3) masks + pruned weights",
            rs_masks,
            lambda p, m: p.random_structured(m, "weight", amount=0.3, dim=0),
            [Target("memcpy<=", 1.5), Target("ratio>=", 2)],
        ),
        (
            "w2_ln",
            "ln_structured(0.3, n=2) masks + pruned weights",
            lambda: jp.prune(model.params, "ln_structured", amount=0.3, n=2),
            lambda p, m: p.ln_structured(m, "weight", amount=0.3, n=2, dim=0),
            [],
        ),
        (
            "w2_l1",
            "l1_unstructured(0.5) masks + pruned weights",
            lambda: jp.prune(model.params, "l1_unstructured", amount=0.5),
            lambda p, m: p.l1_unstructured(m, "weight", amount=0.5),
            [Target("ratio>=", 10)],
        ),
    ]
    for wid, what, jax_call, torch_call, targets in specs:
        ctx.progress(f"W2: {what}")
        # The structured rows take a fraction of a second: light repetitions, so that every
        # library reaches its allocator's steady state (a 1.2 GB output each call).
        reps = ctx.heavy_reps if wid == "w2_l1" else ctx.reps
        rows.append(
            _masks_and_weights_rows(ctx, model, wid, wl, what, jax_call, torch_call, reps, targets)
        )

    ctx.progress("W2: global_unstructured L1 0.5")

    def global_jax():
        masks = jp.global_unstructured(model.params, 0.5)
        return masks, jp.apply_masks(model.params, masks)

    row = Row(
        "w2_global",
        wl,
        "global_unstructured L1 0.5 masks + pruned weights",
        nbytes=model.nbytes,
        targets=[Target("ratio>=", 20)],
        notes="torch, torch_compat: steady state, each in a process of its own",
    )
    row.extra["jaxprune_first_s"] = _measure.once(global_jax)
    row.jaxprune = _measure.median_time(global_jax, ctx.heavy_reps)
    # torch's global pruning peaks at about ten times the parameter bytes: each library runs
    # it in a process of its own, holding only its own copy of the model.
    size = {"blocks": ctx.gpt2_blocks, "scale": ctx.gpt2_scale, "reps": ctx.heavy_reps}
    for lib in _libs():
        ctx.progress(f"W2 global: {lib}, in a process of its own")
        got = ctx.cache.get(("global", lib)) or ctx.fresh("global", lib, "gpt2", size)
        setattr(row, lib, got["steady_s"])
        row.extra[lib] = got
    row.memcpy_s = ctx.memcpy_s(model.nbytes)
    rows.append(row)
    return rows


def w3_single(ctx: Context) -> list[Row]:
    import jaxprune as jp

    rows = []
    key = jax.random.key(0)
    for cols in (ctx.big, 4 * ctx.big):
        model = _models.Model([("w", (cols, ctx.big))])
        wl = f"W3 one {ctx.big}x{cols} weight"
        for method, jax_call, torch_call in (
            (
                "random_unstructured(0.5)",
                lambda model=model: jp.prune(
                    model.params, "random_unstructured", key=key, amount=0.5
                ),
                lambda p, m: p.random_unstructured(m, "weight", amount=0.5),
            ),
            (
                "l1_unstructured(0.5)",
                lambda model=model: jp.prune(model.params, "l1_unstructured", amount=0.5),
                lambda p, m: p.l1_unstructured(m, "weight", amount=0.5),
            ),
        ):
            ctx.progress(f"{wl}: {method}")
            wid = f"w3_{cols}_{method.split('_')[0]}"
            rows.append(
                _masks_and_weights_rows(
                    ctx,
                    model,
                    wid,
                    wl,
                    f"{method} masks + pruned weights",
                    jax_call,
                    torch_call,
                    ctx.heavy_reps,
                )
            )
    return rows


def w4_seeds(ctx: Context) -> list[Row]:
    import jax.numpy as jnp

    import jaxprune as jp

    seeds = 32 if ctx.quick else 256
    n = ctx.big
    model = _models.Model([("w", (n, n))])
    x = model.params["w"]["kernel"]
    keys = jax.random.split(jax.random.key(0), seeds)
    many = jax.jit(jax.vmap(lambda k: jp.random_structured(k, x, 0.3)))
    row = Row(
        "w4_seeds",
        f"W4 {seeds} seeds, one {n}x{n} weight",
        "random_structured(0.3) masks for every seed",
        nbytes=model.nbytes,
        targets=[Target("ratio>=", 100)],
        notes="jaxprune: one jax.vmap over the keys; torch: compute_mask once per seed",
    )
    row.extra["jaxprune_first_s"] = _measure.once(lambda: many(keys))
    row.jaxprune = _measure.median_time(lambda: many(keys), ctx.reps)
    w = model.modules[0].weight.detach()
    import torch

    ones = torch.ones_like(w)
    for lib, prune in _libs().items():
        ctx.progress(f"W4: {lib} loop over {seeds} seeds")

        def loop(prune=prune):
            method = prune.RandomStructured(0.3, dim=0)
            for _ in range(seeds):  # each a fresh full-size float mask, freed by the next
                method.compute_mask(w, ones)

        setattr(row, lib, _measure.median_time(loop, max(1, ctx.heavy_reps)))
    del jnp
    return [row]


def w5_apply(ctx: Context) -> list[Row]:
    import torch

    import jaxprune as jp

    model = ctx.gpt2()
    wl = f"W5 apply masks to the W2 stack ({model.nbytes / 2**20:.4g} MiB)"
    full = jp.prune(model.params, "l1_unstructured", amount=0.5)
    keep = jp.prune(model.params, "random_structured", key=jax.random.key(0), amount=0.3)
    weights = [m.weight.detach() for m in model.modules]
    float_masks = [
        torch.from_numpy(jax.device_get(full[name]["kernel"]).T.astype("float32").copy())
        for name, _ in model.shapes
    ]
    rows = []

    def torch_apply():
        return [w * m for w, m in zip(weights, float_masks)]

    for wid, what, masks in (
        ("w5_full", "full boolean masks (l1 0.5)", full),
        ("w5_keepdims", "keepdims structured masks (random_structured 0.3)", keep),
    ):
        ctx.progress(f"W5: {what}")
        row = Row(
            wid,
            wl,
            what,
            nbytes=model.nbytes,
            targets=[Target("memcpy<=", 1.5)],
            notes="torch: weight_orig * weight_mask (its apply_mask, full float masks)",
        )
        row.jaxprune = _measure.median_time(
            lambda masks=masks: jp.apply_masks(model.params, masks), ctx.reps
        )
        row.torch = _measure.median_time(torch_apply, ctx.reps)
        row.memcpy_s = ctx.memcpy_s(model.nbytes)
        rows.append(row)

    ctx.progress("W5: in place, with buffer donation")
    copies: list[Any] = []
    copy = jax.jit(lambda p: jax.tree.map(lambda x: x + 0, p))

    def fresh_copy():
        copies.clear()
        copies.append(copy(model.params))
        jax.block_until_ready(copies)

    row = Row(
        "w5_donated",
        wl,
        "keepdims masks, in place (donate=True)",
        nbytes=model.nbytes,
        targets=[Target("memcpy<=", 1.5)],
        notes="torch: weight.mul_(mask) in place with its float masks",
    )
    row.jaxprune = _measure.median_time(
        lambda: jp.apply_masks(copies.pop(), keep, donate=True), ctx.reps, setup=fresh_copy
    )
    work = [w.clone() for w in weights]

    def torch_inplace():
        for w, m in zip(work, float_masks):
            w.mul_(m)

    row.torch = _measure.median_time(torch_inplace, ctx.reps)
    row.memcpy_s = ctx.memcpy_s(model.nbytes)
    rows.append(row)
    return rows


def w8_scaling(ctx: Context) -> tuple[list[Row], dict[str, Any]]:
    """random_structured(0.3) masks + pruned weights at growing sizes of the W2 stack."""
    import jaxprune as jp

    model = ctx.gpt2()
    key = jax.random.key(0)
    per_block = len(_models.GPT2_BLOCK)
    blocks = (1, 2) if ctx.quick else (1, 3, 8, 24)
    rows, points = [], {"jaxprune": [], "torch_compat": [], "torch": [], "params": []}
    for b in blocks:
        sub = model.subset(b * per_block)
        ctx.progress(f"W8: {b} blocks ({sub.n_params / 1e6:.3g}M params)")
        row = _masks_and_weights_rows(
            ctx,
            sub,
            f"w8_{b}",
            f"W8 scaling: {b} block{'s' * (b > 1)}, {sub.n_params / 1e6:.3g}M params",
            "random_structured(0.3) masks + pruned weights",
            lambda sub=sub: jp.prune(sub.params, "random_structured", key=key, amount=0.3),
            lambda p, m: p.random_structured(m, "weight", amount=0.3, dim=0),
            ctx.reps,
        )
        rows.append(row)
        points["params"].append(sub.n_params)
        for lib in ("jaxprune", "torch_compat", "torch"):
            points[lib].append(getattr(row, lib))
    return rows, {"points": points, "slopes": slopes(points)}


def slopes(points: dict[str, list[float]]) -> dict[str, float]:
    """The least-squares slope of log(time) against log(params), per implementation: 1 is
    linear in the model's size."""
    import numpy as np

    x = np.log(np.asarray(points["params"], float))
    out = {}
    for lib in ("jaxprune", "torch_compat", "torch"):
        y = np.log(np.asarray(points[lib], float))
        out[lib] = float(np.polyfit(x, y, 1)[0]) if len(x) > 1 else float("nan")
    return out
