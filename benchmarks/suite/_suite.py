"""The benchmark suite: every workload, side by side, in one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from . import _first, _measure, _output, _workloads
from ._rows import Row, Target

#: Workload ids in running order (``--only`` takes these).
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "FC")
LIBS = ("jaxprune", "torch_compat", "torch")


#: The repository root, from which ``benchmarks`` imports in a fresh process.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fresh(job: str, lib: str, model: str, size: dict[str, int]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.suite._fresh", job, lib, model, json.dumps(size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fresh_rows(ctx: _workloads.Context, which: set[str]) -> list[Row]:
    rows: list[Row] = []
    if "W1" in which:
        ctx.progress("W1: first calls, one fresh process each")
        got = {
            lib: ctx.fresh("first", lib, "resnet50", {"width": ctx.resnet_width}) for lib in LIBS
        }
        row = Row(
            "w1_first",
            ctx.label("W1"),
            "random_structured(0.3) masks + weights, first call of a fresh process",
            notes="compilation included (jaxprune, torch_compat)",
        )
        for lib in LIBS:
            setattr(row, lib, got[lib]["first_s"])
        rows.append(row)
    if not which & {"W2", "W6", "W7"}:
        return rows
    size = {"blocks": ctx.gpt2_blocks, "scale": ctx.gpt2_scale}
    wl = ctx.label("W2")
    if "W2" in which:
        # Before the processes of torch's global pruning (13 GB peaks) leave the OS
        # reclaiming memory: this row writes 1.2 GB of fresh outputs per call.
        ctx.progress("W2: jaxprune's masks + weights in a process without torch tensors")
        got = ctx.fresh("steady", "jaxprune", "gpt2", dict(size, reps=ctx.reps))
        rows.append(
            Row(
                "w2_rs_alone",
                wl,
                "random_structured(0.3) masks + pruned weights, jaxprune in a process "
                "without torch tensors",
                jaxprune=got["steady_s"],
                nbytes=got["nbytes"],
                memcpy_s=got["memcpy_s"],
                targets=[Target("memcpy<=", 1.5), Target("ratio>=", 2)],
                notes="memcpy timed in that process; torch: its steady state in the suite",
            )
        )
    if which & {"W2", "W6"}:
        ctx.progress("W2/W6: first calls and memory, one fresh process each")
        got = {lib: ctx.fresh("first", lib, "gpt2", size) for lib in LIBS}
        nbytes = got["torch"]["nbytes"]
        if "W2" in which:
            row = Row(
                "w2_first",
                wl,
                "random_structured(0.3) masks + weights, first call of a fresh process",
                nbytes=nbytes,
                memcpy_s=ctx.memcpy_s(nbytes),
                targets=[Target("ratio>=", 0.5)],
                notes="compilation and page faults included; target: at most 2x torch's",
            )
            for lib in LIBS:
                setattr(row, lib, got[lib]["first_s"])
            rows.append(row)
            # The same with JAX's persistent compilation cache: one process fills it, a
            # second, fresh one is timed (torch has nothing to compile: its cold figure).
            ctx.progress("W2: first calls with a warm JAX compilation cache")
            row = Row(
                "w2_first_cached",
                wl,
                "the same, JAX's persistent compilation cache warm (filled by another process)",
                nbytes=nbytes,
                memcpy_s=ctx.memcpy_s(nbytes),
                notes="jax_compilation_cache_dir set; torch: its cold first call (above)",
                torch=got["torch"]["first_s"],
            )
            with tempfile.TemporaryDirectory() as cache:
                for lib in LIBS[:2]:
                    warm = dict(size, cache_dir=os.path.join(cache, lib))
                    ctx.fresh("first", lib, "gpt2", warm)
                    setattr(row, lib, ctx.fresh("first", lib, "gpt2", warm)["first_s"])
            rows.append(row)
        if "W6" in which:
            wl6 = "W6 memory, pruning the W2 stack (random_structured 0.3)"
            specs = (
                (
                    "w6_held",
                    "held after pruning: params + masks + copies",
                    "held_x",
                    "x params",
                    [],
                ),
                (
                    "w6_peak",
                    "peak while pruning (jaxprune: donate=True)",
                    "peak_x",
                    "x params",
                    [Target("value<=", 1.2)],
                ),
                (
                    "w6_masks",
                    "mask bytes, percent of the parameter bytes",
                    "mask_pct",
                    "%",
                    [Target("value<=", 0.1)],
                ),
            )
            for wid, what, field, unit, targets in specs:
                row = Row(wid, wl6, what, unit=unit, targets=targets)
                for lib in LIBS:
                    setattr(row, lib, got[lib][field])
                rows.append(row)
    if "W2" in which:
        # After the first calls: these processes peak at 13 GB, and the OS is still
        # reclaiming memory for a while after them. The suite's own process holds no model
        # yet; torch's global pruning peaks at about ten times the parameter bytes.
        for lib in LIBS[1:]:
            ctx.progress(f"W2 global: {lib}, in a process of its own")
            ctx.cache[("global", lib)] = ctx.fresh(
                "global", lib, "gpt2", dict(size, reps=ctx.heavy_reps)
            )
    if "W7" in which:
        n_rounds = 4 if ctx.quick else 10
        ctx.progress(f"W7: {n_rounds} rounds, one fresh process each")
        got = {lib: _fresh("rounds", lib, "gpt2", dict(size, rounds=n_rounds)) for lib in LIBS}
        nbytes = got["torch"]["nbytes"]
        wl7 = f"W7 {n_rounds} rounds of random_structured(0.2) on the W2 stack"
        specs = (
            ("w7_masks", "per round: masks", "round_masks_s", "s", [Target("ratio>=", 30)]),
            (
                "w7_both",
                "per round: masks + pruned weights (donated)",
                "round_both_s",
                "s",
                [Target("memcpy<=", 1.5)],
            ),
            ("w7_held", f"held after round {n_rounds}", "held_x", "x params", []),
        )
        for wid, what, field, unit, targets in specs:
            row = Row(wid, wl7, what, unit=unit, targets=targets)
            if unit == "s":
                row.nbytes, row.memcpy_s = nbytes, ctx.memcpy_s(nbytes)
            for lib in LIBS:
                setattr(row, lib, got[lib][field])
            row.extra = {lib: got[lib] for lib in LIBS}
            rows.append(row)
        rows[-3].notes = "torch: the container's compute_mask for the round"
    return rows


def _torch_side_of(rows: list[Row], wid: str, source: str) -> None:
    """Give row ``wid`` the torch and torch_compat figures of row ``source``, and list it
    right after that row."""
    by_id = {r.id: r for r in rows}
    if wid in by_id and source in by_id:
        row = by_id[wid]
        row.torch, row.torch_compat = by_id[source].torch, by_id[source].torch_compat
        rows.remove(row)
        rows.insert(rows.index(by_id[source]) + 1, row)


def run(
    *,
    quick: bool = False,
    only: tuple[str, ...] = WORKLOADS,
    reps: int | None = None,
    json_path: str | None = None,
    plot_path: str | None = None,
    markdown_path: str | None = None,
) -> dict[str, Any]:
    """Run the suite, print its table, and write the JSON, the plot and a markdown copy of
    the table if asked.

    Returns the JSON document: the machine, the settings, one entry per row, the memcpy
    floors and the W8 scaling points and slopes.
    """
    which = set(only)
    started = time.perf_counter()
    # Every figure says which compilation cache it had: none, unless a row says so (the CLI
    # and torch_compat would otherwise use the user's default cache, warm from earlier runs).
    # The fresh processes inherit this.
    os.environ["JAXPRUNE_COMPILATION_CACHE"] = "0"

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    light = reps or (3 if quick else 10)
    ctx = _workloads.Context(
        quick=quick,
        reps=light,
        heavy_reps=reps or (2 if quick else 3),
        progress=progress,
        fresh=_fresh,
    )
    # Steady state means that each library's allocator reuses what the last repetition
    # freed (the fresh-process jobs keep the default allocator). Before anything starts
    # XLA's or torch's threads: an arena a thread already has stays its own.
    keeps = _measure.keep_freed_memory()
    progress("machine and memcpy floor")
    machine = _measure.machine()
    machine["malloc_keeps_freed_memory"] = keeps
    rows: list[Row] = []
    scaling = None
    rows += _fresh_rows(ctx, which)
    for wid, fn in (
        ("W1", _workloads.w1_resnet50),
        ("W2", _workloads.w2_gpt2),
        ("W3", _workloads.w3_single),
        ("W4", _workloads.w4_seeds),
        ("W5", _workloads.w5_apply),
    ):
        if wid in which:
            rows += fn(ctx)
    if "W8" in which:
        more, scaling = _workloads.w8_scaling(ctx)
        rows += more
    if "FC" in which:
        rows += _first.rows(ctx)
    order = {w: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: (order[r.workload[:2]], "_first" not in r.id))
    _torch_side_of(rows, "w2_rs_alone", "w2_rs")
    elapsed = time.perf_counter() - started
    title = (
        f"python -m benchmarks{' --quick' if quick else ''}: {machine['cpu']}, "
        f"{machine['cores']} cores, jax {machine['jax']} ({machine['backend']}), "
        f"torch {machine.get('torch', '-')}; medians, steady state unless a row says first call"
    )
    notes = [
        "ratio: torch.nn.utils.prune's figure / jaxprune's (torch_compat's where jaxprune "
        "has none). x memcpy: jaxprune's time / one memcpy of the parameter bytes "
        + ", ".join(
            f"{n / 2**20:.1f} MiB: {_output.fmt(s, 's')}" for n, s in sorted(ctx.memcpy.items())
        ),
    ]
    if scaling:
        notes.append(
            "W8 slopes of log(time) against log(params): "
            + ", ".join(f"{k} {v:.2f}" for k, v in scaling["slopes"].items())
        )
    firsts = [
        f"{r.id} {_output.fmt(r.extra['jaxprune_first_s'], 's')}"
        for r in rows
        if "jaxprune_first_s" in r.extra
    ]
    notes.append(
        "jaxprune's first call in this process (compilation included): " + ", ".join(firsts)
    )
    notes.append(f"suite time {elapsed:.0f} s")
    _output.print_table(rows, title, notes)
    doc = {
        "machine": machine,
        "quick": quick,
        "reps": {"light": ctx.reps, "heavy": ctx.heavy_reps},
        "seconds": elapsed,
        "memcpy_s": {str(k): v for k, v in ctx.memcpy.items()},
        "rows": [r.to_json() for r in rows],
        "scaling": scaling,
    }
    if json_path:
        _output.write_json(json_path, doc)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(f"{title}\n\n" + _output.markdown(rows) + "\n" + "\n\n".join(notes) + "\n")
    if plot_path:
        if scaling is None:
            raise ValueError("--plot needs W8 (the scaling workload) in --only")
        _output.plot(
            plot_path, scaling, title="W8: random_structured(0.3) + weights, " + machine["cpu"]
        )
    return doc
