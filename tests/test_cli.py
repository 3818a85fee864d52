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


# Data safety: nothing but OUT, or this command's own earlier output at OUT, is replaced.


def prune_args(src, out, *extra):
    return ("prune", str(src), str(out), "--method", "l1_unstructured", "--amount", "0.5", *extra)


def snapshot(folder):
    return {p: digest(folder / p) for p in sorted(os.listdir(folder)) if (folder / p).is_file()}


def test_out_a_directory_that_holds_in_is_refused_and_nothing_is_deleted(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    np.savez(proj / "w.npz", w=np.ones((4, 4), np.float32))
    (proj / "notes.txt").write_text("mine")
    before = snapshot(proj)
    proc = cli(*prune_args(proj / "w.npz", proj))
    assert proc.returncode == 1
    assert "inside OUT" in proc.stderr.strip().splitlines()[-1]
    assert snapshot(proj) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_existing_directory_is_replaced_only_when_it_is_our_output(tmp_path, npz, overwrite):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("mine")
    extra = ("--overwrite",) if overwrite else ()
    proc = cli(*prune_args(npz, plain, *extra))
    assert proc.returncode == 1 and "did not write" in proc.stderr
    assert (plain / "keep.txt").read_text() == "mine"
    # Our own output is replaced by the next run; another orbax checkpoint only with
    # --overwrite.
    ours = tmp_path / "ours"
    assert cli(*prune_args(npz, ours)).returncode == 0
    assert cli(*prune_args(npz, ours)).returncode == 0
    assert set(_io.load(str(ours))) == {"Conv_0/kernel", "Conv_0/bias", "Dense_0/kernel"}
    import orbax.checkpoint as ocp

    theirs = tmp_path / "theirs"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(theirs, {"w": np.ones((2, 2), np.float32)})
    checkpointer.wait_until_finished()
    proc = cli(*prune_args(npz, theirs, *extra))
    if overwrite:
        assert proc.returncode == 0, proc.stderr
        assert "Dense_0/kernel" in _io.load(str(theirs))
    else:
        assert proc.returncode == 1 and "--overwrite replaces it" in proc.stderr
        assert set(_io.load(str(theirs))) == {"w"}


def test_in_and_out_are_compared_by_real_path(tmp_path, npz):
    ckpt = tmp_path / "ckpt"
    assert cli(*prune_args(npz, ckpt)).returncode == 0
    link = tmp_path / "link"
    link.symlink_to(ckpt)
    before = sorted(os.listdir(ckpt))
    for src, out, message in [
        (link, ckpt, "OUT must differ from IN"),
        (ckpt, ckpt / "sub", "inside IN"),
        (ckpt / "x.npz", ckpt, "inside OUT"),
    ]:
        proc = cli(*prune_args(src, out))
        assert proc.returncode == 1 and message in proc.stderr, (src, out, proc.stderr)
    assert sorted(os.listdir(ckpt)) == before


def test_bfloat16_to_npz_is_refused_and_safetensors_keeps_it(tmp_path):
    import jax.numpy as jnp

    src = tmp_path / "bf16.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.ones((4, 4), jnp.bfloat16)}, str(src))
    proc = cli(*prune_args(src, tmp_path / "o.npz"))
    assert proc.returncode == 1 and "bfloat16" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.npz").exists()
    assert cli(*prune_args(src, tmp_path / "o.safetensors")).returncode == 0
    w = _io.load(str(tmp_path / "o.safetensors"))["w"]
    assert w.dtype == jnp.bfloat16 and int((np.asarray(w, np.float32) == 0).sum()) == 8


@pytest.mark.parametrize(
    "out, message",
    [
        ("dir.npz", "is an existing directory, not a npz file"),
        (".", "is inside OUT"),
        ("file.npz/out.npz", "is not a directory"),
    ],
)
def test_bad_outputs_are_one_line(tmp_path, npz, out, message):
    (tmp_path / "dir.npz").mkdir()
    np.savez(tmp_path / "file.npz", w=np.ones(2))
    before = snapshot(tmp_path)
    proc = cli(*prune_args(npz, out), cwd=tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before


def test_a_seed_over_64_bits_is_one_line(tmp_path, npz):
    proc = cli(*prune_args(npz, tmp_path / "o.npz", "--seed", str(2**64)))
    assert proc.returncode == 2  # argparse's usage error
    assert "must fit in 64 bits" in proc.stderr.strip().splitlines()[-1]


def test_report_into_a_closed_pipe_is_quiet(tmp_path):
    src = tmp_path / "many.npz"
    np.savez(src, **{f"layer_{i}/kernel": np.ones((2, 2), np.float32) for i in range(1500)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxprune", "report", str(src), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_stale_temporary_siblings_of_ours_are_cleaned(tmp_path, npz):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / ".o.npz.jaxprune-partial-999999999-abc"
        live = tmp_path / f".o.npz.jaxprune-partial-{sleeper.pid}-def"
        other = tmp_path / ".o.npz.something-else"
        for d in (stale, live, other):
            d.mkdir()
        assert cli(*prune_args(npz, tmp_path / "o.npz")).returncode == 0
        assert not stale.exists() and live.exists() and other.exists()
    finally:
        sleeper.kill()


def test_a_pruned_torch_state_dict_is_read_as_what_it_is(tmp_path):
    from torch.nn.utils import prune as torch_prune

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    torch_prune.l1_unstructured(model[0], "weight", amount=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    src, out = tmp_path / "pruned.pt", tmp_path / "again.pt"
    torch.save(model.state_dict(), src)
    proc = cli(*prune_args(src, out, "--where", r"^0\.weight$"))
    assert proc.returncode == 0, proc.stderr
    assert "pruned torch parameter" in proc.stdout
    state = torch.load(out, weights_only=True)
    assert set(state) == set(before)
    assert torch.equal(state["0.weight_orig"], before["0.weight_orig"])  # torch keeps it
    old, new = before["0.weight_mask"], state["0.weight_mask"]
    assert new.dtype == old.dtype and not bool(((new != 0) & (old == 0)).any())
    assert int((old != 0).sum() - (new != 0).sum()) == 12  # half of the 24 left
    # The same as torch's own second round, and loadable into the pruned skeleton.
    torch_prune.l1_unstructured(model[0], "weight", amount=0.5)
    assert torch.equal(model[0].weight_mask, new)
    model.load_state_dict(state)


def test_structured_methods_default_to_the_output_channels_of_the_layout(tmp_path, npz):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3)
    src = tmp_path / "conv.pt"
    torch.save(conv.state_dict(), src)
    proc = cli(
        "prune", str(src), str(tmp_path / "o.pt"), "--method", "ln_structured", "--amount", "2"
    )
    assert proc.returncode == 0, proc.stderr
    assert "along axis 0, the output channels of torch's (out, in, ...) layout" in proc.stdout
    w = torch.load(tmp_path / "o.pt", weights_only=True)["weight"]
    assert int((w.abs().sum(dim=(1, 2, 3)) == 0).sum()) == 2  # 2 whole output filters
    flax_args = ("--method", "random_structured", "--amount", "2")
    proc = cli("prune", str(npz), str(tmp_path / "o.npz"), *flax_args)
    assert "along axis -1, the output channels of Flax's (..., out) layout" in proc.stdout


def test_a_train_state_checkpoint_prunes_its_params_only(tmp_path):
    import orbax.checkpoint as ocp

    kernel = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    params = {"Dense_0": {"kernel": kernel, "bias": np.zeros(4, np.float32)}}
    mu = {"Dense_0": {"kernel": np.full((6, 4), 0.5, np.float32), "bias": np.ones(4, np.float32)}}
    state = {"step": np.int32(3), "params": params, "opt_state": {"mu": mu, "nu": mu}}
    src = tmp_path / "state"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(src, state)
    checkpointer.wait_until_finished()
    proc = cli(*prune_args(src, tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "TrainState" in proc.stdout
    out = _io.load(str(tmp_path / "out"))
    assert int((np.asarray(out["params"]["Dense_0"]["kernel"]) == 0).sum()) == 12
    assert (np.asarray(out["opt_state"]["mu"]["Dense_0"]["kernel"]) == 0.5).all()
    assert (np.asarray(out["params"]["Dense_0"]["bias"]) == 0).all()  # zero-initialised as given
