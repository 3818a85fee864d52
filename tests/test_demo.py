import subprocess
import sys

from jaxprune import _demo


def test_demo_prunes_every_method_to_the_requested_sparsity():
    lines = []
    results = _demo.run(out=lines.append)
    assert set(results) == {name for name, _ in _demo.METHODS}
    text = "\n".join(lines)
    assert "Dense_0/kernel" in text and "(dim 3)" in text
    params = _demo.cnn_params()
    kernels = sum(x.size for x in __import__("jax").tree.leaves(params) if x.ndim >= 2)
    biases = sum(x.size for x in __import__("jax").tree.leaves(params) if x.ndim == 1)
    total = kernels + biases
    # Biases start at zero; kernels lose half their entries.
    assert abs(results["l1_unstructured"] - (biases + kernels / 2) / total) < 1e-3


def test_cli_demo_runs():
    out = subprocess.run(
        [sys.executable, "-m", "jaxprune", "demo"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "ln_structured(amount=0.3, n=2, dim=-1)" in out.stdout
