import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from jaxprune import _cli, _io


def cli(*args, cwd=None):
    """``jaxprune ARGS`` run in this process through ``main(argv)``: exit status, stdout and
    stderr, as a subprocess would give them."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _cli.main([str(a) for a in args])
            except SystemExit as e:  # argparse's errors and --help
                code = e.code
    finally:
        os.chdir(here)
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_the_command_runs_as_a_program(tmp_path, npz):
    # The one subprocess test: the entry point as a user runs it.
    out = tmp_path / "p.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "jaxprune", "prune", str(npz), str(out), "--method",
         "l1_unstructured", "--amount", "0.5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {out} (sparsity ")
    params = _io.load(str(out))
    zeros = sum(int((np.asarray(v) == 0).sum()) for k, v in params.items() if "kernel" in k)
    assert zeros == (3 * 3 * 2 * 8 + 32 * 10) // 2


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "model.npz"
    np.savez(
        path,
        **{
            "Conv_0/kernel": rng.standard_normal((3, 3, 2, 8)).astype(np.float32),
            "Conv_0/bias": np.ones(8, np.float32),
            "Dense_0/kernel": rng.standard_normal((32, 10)).astype(np.float32),
        },
    )
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pt", ""])
def test_prune_every_format(tmp_path, npz, suffix):
    before = digest(npz)
    out = tmp_path / f"pruned{suffix or '_orbax'}"
    proc = cli(
        "prune",
        str(npz),
        str(out),
        "--method",
        "random_structured",
        "--amount",
        "0.5",
        "--seed",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    assert digest(npz) == before  # IN untouched
    params = _io.load(str(out))
    assert set(params) == {"Conv_0/kernel", "Conv_0/bias", "Dense_0/kernel"}
    dead = (np.asarray(params["Dense_0/kernel"]) == 0).all(axis=0)
    assert dead.sum() == 5
    assert (np.asarray(params["Conv_0/bias"]) == 1).all()  # 1-D leaves are not selected
    # The same prune through the library gives the same weights.
    import jax

    import jaxprune as jp

    ref = jp.apply_masks(
        _io.load(str(npz)),
        jp.prune(_io.load(str(npz)), "random_structured", key=jax.random.key(3), amount=0.5),
    )
    for k in ref:
        np.testing.assert_array_equal(np.asarray(params[k]), np.asarray(ref[k]))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".jaxprune-")]


def test_torch_state_dict_with_dim_zero(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 2))
    src = tmp_path / "model.pt"
    torch.save(model.state_dict(), src)
    out = tmp_path / "pruned.pt"
    proc = cli(
        "prune",
        str(src),
        str(out),
        "--method",
        "ln_structured",
        "--amount",
        "3",
        "--dim",
        "0",
        "--n",
        "1",
        "--where",
        r"^0\.weight$",
    )
    assert proc.returncode == 0, proc.stderr
    state = torch.load(out, weights_only=True)
    model.load_state_dict(state)  # still a valid state_dict for the model
    assert int((state["0.weight"].abs().sum(1) == 0).sum()) == 3


def test_global_and_report(tmp_path, npz):
    out = tmp_path / "g.npz"
    proc = cli(
        "prune", str(npz), str(out), "--method", "l1_unstructured", "--amount", "100", "--global"
    )
    assert proc.returncode == 0, proc.stderr
    params = _io.load(str(out))
    zeros = sum(int((params[k] == 0).sum()) for k in ("Conv_0/kernel", "Dense_0/kernel"))
    assert zeros == 100
    text = cli("report", str(out))
    assert text.returncode == 0 and "Dense_0/kernel" in text.stdout and "total" in text.stdout
    rows = json.loads(cli("report", str(out), "--json").stdout)
    assert {r["path"]: r["zeros"] for r in rows}["Conv_0/bias"] == 0
    assert sum(r["zeros"] for r in rows) == 100


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["prune", "missing.npz", "o.npz", "--method", "l1_unstructured", "--amount", "1"],
            "no such file or directory",
        ),
        (
            ["prune", "IN", "o.txt", "--method", "l1_unstructured", "--amount", "1"],
            "unknown checkpoint format",
        ),
        (["prune", "IN", "o.npz", "--method", "magnitude", "--amount", "1"], "invalid choice"),
        (
            ["prune", "IN", "o.npz", "--method", "l1_unstructured", "--amount", "half"],
            "invalid amount",
        ),
        (
            ["prune", "IN", "o.npz", "--method", "l1_unstructured", "--amount", "1.5"],
            "amount=1.5 should either be",
        ),
        (
            ["prune", "IN", "o.npz", "--method", "l1_unstructured", "--amount", "100000"],
            "should be smaller",
        ),
        (
            [
                "prune",
                "IN",
                "o.npz",
                "--method",
                "random_structured",
                "--amount",
                "1",
                "--dim",
                "7",
            ],
            "Invalid index dim=7",
        ),
        (
            ["prune", "IN", "IN", "--method", "l1_unstructured", "--amount", "1"],
            "OUT must differ from IN",
        ),
        (
            ["prune", "IN", "o.npz", "--method", "ln_structured", "--amount", "1", "--global"],
            "--global needs an unstructured method",
        ),
        (["report", "missing"], "no such file or directory"),
    ],
)
def test_errors_are_one_line_and_write_nothing(tmp_path, npz, args, message):
    before = digest(npz)
    args = [str(npz) if a == "IN" else a for a in args]
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in proc.stderr
    assert digest(npz) == before
    assert not (tmp_path / "o.npz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".jaxprune-")]


def test_interrupted_write_leaves_no_output(tmp_path, monkeypatch):
    def broken(params, path, fmt):
        with open(path, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(_io, "_write", broken)
    with pytest.raises(KeyboardInterrupt):
        _io.save({"w": np.ones(3)}, str(tmp_path / "out.npz"))
    assert os.listdir(tmp_path) == []
