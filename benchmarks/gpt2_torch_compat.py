"""torch_compat against torch.nn.utils.prune on a GPT-2-medium-shaped stack.

24 blocks, d=1024: per block Linear layers qkv (1024 -> 3072), proj (1024 -> 1024),
fc (1024 -> 4096), fc2 (4096 -> 1024); about 302M float32 parameters (1.2 GB).

Workloads, each run by both libraries through the same calls:
  random_structured  random_structured(amount=0.3, dim=0) on every Linear weight
  l1_unstructured    l1_unstructured(amount=0.5) on every Linear weight
  global_l1          global_unstructured over every Linear weight, L1Unstructured, amount=0.5

Each (library, workload) runs in a fresh subprocess, so that its first call and its peak
memory are its own: "first" is the first call in that process (page faults of the fresh masks
and copies included), "steady" a second call after ``prune.remove`` on every weight, when the
allocator reuses memory. Peak memory is the process's peak resident size minus its resident
size just before pruning. All subprocesses belong to one run of this script, one after the
other, so the ratios compare figures measured side by side.

Run: ``python -m benchmarks.gpt2_torch_compat [--blocks 24] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

WORKLOADS = ("random_structured", "l1_unstructured", "global_l1")
LIBS = ("torch", "torch_compat")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(lib: str, workload: str, blocks: int) -> dict:
    import torch

    if lib == "torch":
        import torch.nn.utils.prune as prune
    else:
        from torch_compat import prune
    torch.manual_seed(0)
    layers = []
    for _ in range(blocks):
        for cin, cout in ((1024, 3072), (1024, 1024), (1024, 4096), (4096, 1024)):
            layers.append(torch.nn.Linear(cin, cout))
    params = [(m, "weight") for m in layers]
    n_params = sum(m.weight.numel() for m in layers)

    def run():
        t0 = time.perf_counter()
        if workload == "random_structured":
            for m in layers:
                prune.random_structured(m, "weight", amount=0.3, dim=0)
        elif workload == "l1_unstructured":
            for m in layers:
                prune.l1_unstructured(m, "weight", amount=0.5)
        else:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)
        return time.perf_counter() - t0

    base = _rss_bytes()
    first = run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    held = _rss_bytes() - base
    zeros = sum(int((m.weight_mask == 0).sum()) for m in layers)
    steadies = []
    for _ in range(3):
        for m in layers:
            prune.remove(m, "weight")
        steadies.append(run())
    steady = sorted(steadies)[1]
    return {
        "params": n_params,
        "first_s": first,
        "steady_s": steady,
        "peak_extra_bytes": peak,
        "held_extra_bytes": held,
        "pruned": zeros,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=24)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", nargs=2, metavar=("LIB", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child, args.blocks)))
        return {}
    results: dict = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
        "blocks": args.blocks,
    }
    for workload in WORKLOADS:
        for lib in LIBS:
            print(f"running {lib} {workload} ...", file=sys.stderr, flush=True)
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.gpt2_torch_compat",
                    "--blocks",
                    str(args.blocks),
                    "--child",
                    lib,
                    workload,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[f"{lib}/{workload}"] = json.loads(out.stdout.strip().splitlines()[-1])
    gb = 1 << 30
    print(
        f"GPT-2-medium shapes, {args.blocks} blocks, "
        f"{results['torch/random_structured']['params'] / 1e6:.0f}M params, {results['machine']}"
    )
    print(
        f"{'workload':<18} {'library':<13} {'first s':>9} {'steady s':>9} {'peak GB':>8} "
        f"{'held GB':>8}"
    )
    for workload in WORKLOADS:
        for lib in LIBS:
            r = results[f"{lib}/{workload}"]
            print(
                f"{workload:<18} {lib:<13} {r['first_s']:9.2f} {r['steady_s']:9.2f} "
                f"{r['peak_extra_bytes'] / gb:8.2f} {r['held_extra_bytes'] / gb:8.2f}"
            )
        t, c = results[f"torch/{workload}"], results[f"torch_compat/{workload}"]
        assert t["pruned"] == c["pruned"], (workload, t["pruned"], c["pruned"])
        print(
            f"{'':<18} {'ratio':<13} {t['first_s'] / c['first_s']:9.2f} "
            f"{t['steady_s'] / c['steady_s']:9.2f}   (torch time / torch_compat time)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
