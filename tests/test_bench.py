"""The benchmark suite: the --quick run end to end (so the suite never rots), and the pieces
its figures rest on: undoing a torch prune, ratios, targets, slopes, memory gauges."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from benchmarks import __main__ as bench_cli
from benchmarks.suite import _measure, _models, _workloads
from benchmarks.suite._rows import Row, Target
from benchmarks.suite._suite import ROOT

EXPECTED_ROWS = {
    "w1_first", "w1_masks", "w1_masks_weights", "w1_remove",
    "w2_first", "w2_first_cached", "w2_rs_masks", "w2_rs", "w2_rs_alone",
    "w2_ln", "w2_l1", "w2_global",
    "w3_512_random", "w3_512_l1", "w3_2048_random", "w3_2048_l1",
    "w4_seeds", "w5_full", "w5_keepdims", "w5_donated",
    "w6_held", "w6_peak", "w6_masks", "w7_masks", "w7_both", "w7_held",
    "w8_1", "w8_2",
    "fc_import", "fc_mlp_first_cold", "fc_mlp_first_warm", "fc_mlp_round",
    "fc_tutorial_cold", "fc_tutorial_warm", "fc_cli_cold", "fc_cli_warm",
    *(f"fc_gpt2_{m}_{s}" for m in ("l1_unstructured", "random_structured", "ln_structured",
                                   "global_unstructured") for s in ("cold", "warm")),
}  # fmt: skip
LIBS = ("jaxprune", "torch_compat", "torch")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks", "--quick",
            "--json", str(out / "bench.json"), "--plot", str(out / "scaling.png"),
            "--markdown", str(out / "bench.md"),
        ],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((out / "bench.json").read_text()), out / "scaling.png", out / "bench.md"


@pytest.mark.slow
def test_quick_run_measures_every_workload_for_every_library(quick):
    _, doc, _, _ = quick
    rows = {r["id"]: r for r in doc["rows"]}
    assert set(rows) == EXPECTED_ROWS
    for r in rows.values():
        libs = ("torch_compat", "torch") if r["id"] == "w1_remove" else LIBS
        if r["id"].startswith(("w5", "fc_cli")):
            libs = ("jaxprune", "torch")
        elif r["id"].startswith(("fc_import", "fc_mlp", "fc_tutorial")):
            libs = ("torch_compat", "torch")
        for lib in libs:
            assert math.isfinite(r[lib]) and r[lib] > 0, (r["id"], lib, r[lib])
        assert r["ratio"] == pytest.approx(r["torch"] / (r["jaxprune"] or r["torch_compat"]))
        for t in r["targets"]:
            assert t["met"] in (True, False)
    # Memory rows: torch keeps weight_orig, a full float mask and the weight; jaxprune's
    # structured masks are one byte per channel.
    assert rows["w6_masks"]["torch"] == pytest.approx(100.0)
    assert rows["w6_masks"]["jaxprune"] < 1.0
    # jaxprune's masks + weights timed again in a process without torch tensors, against
    # torch's steady figure from the suite, listed right after the in-suite row.
    ids = [r["id"] for r in doc["rows"]]
    assert ids.index("w2_rs_alone") == ids.index("w2_rs") + 1
    assert rows["w2_rs_alone"]["torch"] == rows["w2_rs"]["torch"]
    assert rows["w2_rs_alone"]["memcpy_s"] > 0
    assert doc["quick"] is True and doc["machine"]["cores"] >= 1
    assert set(doc["scaling"]["slopes"]) == set(LIBS)


@pytest.mark.slow
def test_quick_run_prints_the_table_and_progress_and_writes_the_plot(quick):
    proc, doc, png, md = quick
    for column in ("workload", "jaxprune", "torch_compat", "torch.nn.utils.prune", "ratio"):
        assert column in proc.stdout
    assert "x memcpy" in proc.stdout
    assert "W8 slopes" in proc.stdout
    assert "W7:" in proc.stderr and "W2:" in proc.stderr and "FC:" in proc.stderr  # progress
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    table = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert table[0].startswith("| workload | what | jaxprune | torch_compat | torch |")
    assert len(table) == 2 + len(doc["rows"])  # the header and its rule


@pytest.mark.parametrize(
    "args, message",
    [(["--only", "W9"], "unknown workloads"), (["--reps", "0"], "--reps must be at least 1")],
)
def test_bad_options_fail_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        bench_cli.main(["--quick", *args])
    assert e.value.code == 2  # argparse's usage error, before anything runs
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1]


def test_unprune_restores_the_original_weight_without_a_copy():
    torch.manual_seed(0)
    m = torch.nn.Linear(6, 4)
    before = m.weight.detach().clone()
    prune.random_structured(m, "weight", amount=0.5, dim=0)
    orig = m.weight_orig
    _models.unprune(m)
    assert not prune.is_pruned(m)
    assert m.weight is orig and isinstance(m.weight, torch.nn.Parameter)
    assert torch.equal(m.weight, before)
    assert set(dict(m.named_buffers())) == set() and not m._forward_pre_hooks
    prune.l1_unstructured(m, "weight", amount=0.5)  # prunable again
    assert int((m.weight_mask == 0).sum()) == 12


def test_models_share_values_between_layouts():
    model = _models.Model(_models.resnet50_shapes(4) + _models.gpt2_shapes(1, 16))
    assert len(model.modules) == len(model.shapes)
    for (name, shape), m in zip(model.shapes, model.modules):
        kernel = np.asarray(model.params[name]["kernel"])
        assert m.weight.shape == _models.torch_shape(shape)
        axes = (3, 2, 0, 1) if len(shape) == 4 else (1, 0)
        np.testing.assert_array_equal(m.weight.detach().numpy(), kernel.transpose(axes))
    assert model.n_params == sum(int(np.prod(s)) for _, s in model.shapes)
    sub = model.subset(3)
    assert sub.modules == model.modules[:3] and list(sub.params) == [n for n, _ in sub.shapes]


def test_resnet50_and_gpt2_shapes_are_the_issue_s():
    shapes = _models.resnet50_shapes()
    assert len(shapes) == 54
    assert sum(int(np.prod(s)) for _, s in shapes) == 25_502_912
    gpt2 = _models.gpt2_shapes(24)
    assert len(gpt2) == 96 and sum(int(np.prod(s)) for _, s in gpt2) == 301_989_888


def test_ratio_memcpy_multiple_and_targets():
    row = Row("x", "W", "what", jaxprune=0.5, torch_compat=1.0, torch=20.0, memcpy_s=0.25)
    row.targets = [Target("ratio>=", 30), Target("memcpy<=", 2), Target("value<=", 0.4)]
    assert row.ratio == 40.0 and row.x_memcpy == 2.0
    assert row.verdicts() == [True, True, False]
    no_jax = Row("y", "W", "what", torch_compat=2.0, torch=4.0, targets=[Target("ratio>=", 3)])
    assert no_jax.ratio == 2.0 and no_jax.x_memcpy is None and no_jax.verdicts() == [False]
    memory = Row("z", "W", "what", unit="x params", jaxprune=1.0, memcpy_s=1.0)
    assert memory.x_memcpy is None
    assert json.loads(json.dumps(row.to_json()))["targets"][0]["met"] is True


def test_slopes_of_power_laws():
    params = [1e6, 1e7, 1e8]
    points = {
        "params": params,
        "jaxprune": [3e-9 * p for p in params],
        "torch_compat": [1e-12 * p**1.5 for p in params],
        "torch": [0.1, 0.1, 0.1],
    }
    got = _workloads.slopes(points)
    assert got["jaxprune"] == pytest.approx(1.0)
    assert got["torch_compat"] == pytest.approx(1.5)
    assert got["torch"] == pytest.approx(0.0, abs=1e-9)


def test_peak_gauge_sees_an_allocation_and_resets():
    _measure.reset_peak()
    start = _measure.peak()
    block = np.ones(64 * 2**20, np.uint8)  # touched: 64 MiB resident
    assert _measure.peak() - start >= 60 * 2**20
    del block
    _measure.reset_peak()
    assert _measure.peak() < start + 32 * 2**20


def test_median_time_runs_setup_outside_the_clock_and_counts_calls():
    calls = []
    seconds = _measure.median_time(lambda: calls.append("fn"), 3, warmup=2,
                                   setup=lambda: calls.append("setup"))  # fmt: skip
    assert calls == ["setup", "fn"] * 5
    assert 0 <= seconds < 1
    assert _measure.memcpy_time(1 << 20, 3) > 0


def test_first_contact_models_are_bert_base_and_gpt2_small():
    from benchmarks.suite import _first

    def count(shapes):
        return sum(a * b for _, (a, b) in shapes)

    assert count(_first.model_shapes("bert", False)) == 109_360_128  # BERT-base's matrices
    assert count(_first.model_shapes("gpt2", False)) == 124_318_464  # GPT-2 small's
    assert len(_first.model_shapes("gpt2", False)) == 2 + 12 * 4


def test_the_tutorial_script_prunes_the_same_with_torch_and_torch_compat():
    from benchmarks import tutorial

    lines = {lib: tutorial.run(tutorial.load_prune(lib)) for lib in ("torch", "torch_compat")}
    assert lines["torch"] == lines["torch_compat"]
    assert "global sparsity 20.00%" in lines["torch"]
    with pytest.raises(SystemExit, match="usage"):
        tutorial.load_prune("numpy")
