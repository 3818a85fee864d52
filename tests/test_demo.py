import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    return proc, out


def test_quick_demo_runs_end_to_end(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stderr
    assert "Pruning the digits CNN" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    methods = {r["method"] for r in results["rows"]}
    assert methods == {"random_structured", "ln_structured", "l1_unstructured"}
    assert results["dense_accuracy"] > 0.7
    for r in results["rows"]:
        assert abs(r["sparsity"] - r["amount"]) < 0.02
        if r["amount"] == 0.0:
            assert r["accuracy_before_finetune"] == results["dense_accuracy"]
    assert results["gradual"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    compacted = results["compact"]
    assert compacted["params_after"] < compacted["params_before"] / 3  # half of each layer
    assert compacted["flops_after"] < compacted["flops_before"] / 3
    assert compacted["accuracy"] == compacted["accuracy_masked"] and compacted["kept"] == []
    assert "compacted CNN" in proc.stdout
    nm = results["nm"]
    assert nm["is_2_4"] and "nm_unstructured 2:4" in proc.stdout
    # half of Conv_1 (3*3*16*32) and Dense_0 (2048*64) pruned, Conv_0 (3*3*1*16) dense
    assert nm["sparsity"] == pytest.approx((4608 + 131072) / 2 / (144 + 4608 + 131072))
    assert results["torch_twin"] and all(r["same"] for r in results["torch_twin"])
    assert "the same as in Flax" in proc.stdout
