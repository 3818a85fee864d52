"""Physical compaction: forward time of the masked model against the compacted one.

Two models, each pruned at 30%, 50% and 70% of its channels, then compacted with
``jp.compact``:

  ResNet-style CNN   stem conv 64 + BatchNorm, two residual blocks of 64, a strided conv to
                     128, two residual blocks of 128, global average pooling, a classifier;
                     32x32x3 inputs, batch 32. Every conv's output channels pruned by L2 norm
                     (with its BatchNorm's scale and bias, as structured pruning of conv+BN
                     does); a residual stage's producers share one mask (coupled channels).
  GPT-2-small MLPs   12 blocks shaped like GPT-2-small's MLP (768 -> 3072 -> 768, GELU,
                     residual), 256 tokens; the hidden channels pruned by L2 norm.

For each: parameters and FLOPs before and after (the report's), the forward time of the
jit-compiled masked model and of the compacted one (medians after warm-up, interleaved),
the speed-up against the FLOP reduction, and the time ``jp.compact`` takes against one
compilation of the masked model's forward. The CNN runs twice: as compacted, and with
``multiple_of=8`` (channel counts rounded up to multiples of 8, which XLA's CPU
convolutions favour).
Run: ``python -m benchmarks.compact [--reps N]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import jaxprune as jp


def resnet():
    import flax.linen as nn

    class Block(nn.Module):
        features: int

        @nn.compact
        def __call__(self, x):
            y = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(self.features, (3, 3))(x)))
            y = nn.BatchNorm(use_running_average=True)(nn.Conv(self.features, (3, 3))(y))
            return nn.relu(x + y)

    class ResNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(64, (3, 3))(x)))
            x = Block(64)(Block(64)(x))
            x = nn.Conv(128, (3, 3), strides=2)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=True)(x))
            x = Block(128)(Block(128)(x))
            return nn.Dense(10)(x.mean(axis=(1, 2)))

    model = ResNet()
    x = jax.random.normal(jax.random.key(0), (32, 32, 32, 3))
    variables = model.init(jax.random.key(1), x)
    return model.apply, variables, x


def resnet_masks(variables, amount):
    """L2 channel masks for every conv, its BatchNorm's scale and bias sharing them; a
    stage's residual producers (the stem or strided conv, each block's second conv) share
    the first one's mask."""
    p = variables["params"]
    masks = jax.tree.map(lambda _: True, variables)

    def conv_mask(kernel):
        return jp.ln_structured(kernel, amount, 2, dim=-1)

    def put(path, mask):
        node = masks["params"]
        for k in path[:-1]:
            node = node[k]
        conv, bn = path[-1]
        node[conv]["kernel"] = mask
        node[bn]["scale"] = node[bn]["bias"] = mask.reshape(-1)

    stem = conv_mask(p["Conv_0"]["kernel"])
    put((("Conv_0", "BatchNorm_0"),), stem)
    strided = conv_mask(p["Conv_1"]["kernel"])
    put((("Conv_1", "BatchNorm_1"),), strided)
    for i, shared in ((0, stem), (1, stem), (2, strided), (3, strided)):
        block = f"Block_{i}"
        put((block, ("Conv_0", "BatchNorm_0")), conv_mask(p[block]["Conv_0"]["kernel"]))
        put((block, ("Conv_1", "BatchNorm_1")), shared)
    return masks


def mlp_stack():
    d, h, blocks = 768, 3072, 12
    keys = jax.random.split(jax.random.key(2), 2 * blocks)
    params = {
        f"block_{i}": {
            "fc1": {
                "kernel": jax.random.normal(keys[2 * i], (d, h)) * 0.02,
                "bias": jnp.zeros(h),
            },
            "fc2": {
                "kernel": jax.random.normal(keys[2 * i + 1], (h, d)) * 0.02,
                "bias": jnp.zeros(d),
            },
        }
        for i in range(blocks)
    }

    def apply(p, x):
        for i in range(blocks):
            b = p[f"block_{i}"]
            x = (
                x
                + jax.nn.gelu(x @ b["fc1"]["kernel"] + b["fc1"]["bias"]) @ b["fc2"]["kernel"]
                + b["fc2"]["bias"]
            )
        return x

    x = jax.random.normal(jax.random.key(3), (256, d))
    return apply, params, x


def mlp_masks(params, amount):
    return jp.prune(params, "ln_structured", amount=amount, n=2, dim=-1, where="fc1/kernel")


def _interleaved(fns, reps):
    for f in fns:
        jax.block_until_ready(f())
    times = [[] for _ in fns]
    for _ in range(reps):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def run_case(name, apply, params, x, make_masks, amounts, reps, multiple=1):
    rows = []
    for amount in amounts:
        masks = make_masks(params, amount)
        masked = jp.apply_masks(params, masks)
        jax.clear_caches()  # one real compilation, not a cache hit from the last amount
        forward = jax.jit(apply)
        t0 = time.perf_counter()
        forward.lower(masked, x).compile()
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(3):  # the first call, then two more: the first pays for page faults
            t0 = time.perf_counter()
            fn, small, report = jp.compact(apply, params, masks, x, multiple_of=multiple)
            times.append(time.perf_counter() - t0)
        compact_s = (times[0], statistics.median(times))
        small_forward = jax.jit(fn)
        a, b = forward(masked, x), small_forward(small, x)
        err = float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
        t_masked, t_small = _interleaved(
            [
                lambda f=forward, p=masked: f(p, x),
                lambda f=small_forward, p=small: f(p, x),
            ],
            reps,
        )
        flop_cut = report.flops_before / report.flops_after
        speedup = t_masked / t_small
        rows.append(
            (
                name if multiple == 1 else f"{name}, multiple_of={multiple}",
                amount,
                report.params_before,
                report.params_after,
                report.flops_before,
                report.flops_after,
                t_masked,
                t_small,
                speedup,
                flop_cut,
                compact_s,
                compile_s,
                err,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compact")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--amounts", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    args = parser.parse_args(argv)
    rows = []
    apply, variables, x = resnet()
    rows += run_case("ResNet-style CNN", apply, variables, x, resnet_masks, args.amounts, args.reps)
    rows += run_case(
        "ResNet-style CNN", apply, variables, x, resnet_masks, args.amounts, args.reps, 8
    )
    apply, params, x = mlp_stack()
    rows += run_case("GPT-2-small MLPs", apply, params, x, mlp_masks, args.amounts, args.reps)
    print(
        f"{platform.processor() or platform.machine()}, jax {jax.__version__}; "
        f"medians of {args.reps}"
    )
    print(
        "| model | pruned | params | FLOPs | masked | compacted | speed-up | FLOP cut "
        "| speed-up / FLOP cut | jp.compact, first / median of 3 | one compile "
        "| max rel. diff |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        name, amount, pb, pa, fb, fa, tm, ts, sp, fc, cs, cl, err = r
        print(
            f"| {name} | {amount:.0%} | {pb / 1e6:.2f}M -> {pa / 1e6:.2f}M "
            f"| {fb / 1e9:.2f}G -> {fa / 1e9:.2f}G | {tm * 1e3:.1f} ms | {ts * 1e3:.1f} ms "
            f"| {sp:.2f}x | {fc:.2f}x | {sp / fc:.2f} | {cs[0]:.2f} s / {cs[1]:.2f} s "
            f"| {cl:.2f} s | {err:.1e} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
