"""First contact (FC): what a new user meets first, each job in a fresh process.

- ``import``: ``import torch_compat.prune`` against ``import torch.nn.utils.prune`` (torch
  included in both).
- ``mlp``: a training framework's pruning callback, once per epoch: the weights and biases
  of ``Linear(32, 32), Linear(32, 32), Linear(32, 2)``, ``amount=0.2`` each, ten rounds; the
  first round, and the median of the later ones.
- ``tutorial``: ``benchmarks/tutorial.py`` (PyTorch's pruning tutorial as a script) timed
  from outside, interpreter start and imports included.
- ``model``: the first call of one method on every weight of BERT-base or GPT-2 small
  (shapes written out: no download), masks and pruned weights: torch modules for torch and
  torch_compat, Flax-layout params for jaxprune.
- ``cli``: ``jaxprune prune`` of GPT-2 small as ``.safetensors`` (global L1, 0.5) against a
  short torch script doing the same, timed from outside.

"cold" is an empty JAX compilation cache (jaxprune: none, the library's default), "warm"
one that an earlier process filled. Run as ``python -m benchmarks.suite._first JOB ARGS``
(one JSON line out).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from ._rows import Row, Target


def bert_shapes(layers: int = 12, d: int = 768, vocab: int = 30522) -> list[tuple[str, tuple]]:
    """(name, Flax kernel shape (in, out)) of every weight matrix; torch's is (out, in)."""
    shapes = [("word_embeddings", (vocab, d)), ("position_embeddings", (512, d))]
    shapes.append(("token_type_embeddings", (2, d)))
    for i in range(layers):
        for name in ("query", "key", "value", "attention_output"):
            shapes.append((f"layer{i}_{name}", (d, d)))
        shapes += [(f"layer{i}_intermediate", (d, 4 * d)), (f"layer{i}_output", (4 * d, d))]
    shapes.append(("pooler", (d, d)))
    return shapes


def gpt2_shapes(layers: int = 12, d: int = 768, vocab: int = 50257) -> list[tuple[str, tuple]]:
    """GPT-2's weight matrices, as :func:`bert_shapes` (Conv1D: (in, out), as Flax's)."""
    shapes = [("wte", (vocab, d)), ("wpe", (1024, d))]
    for i in range(layers):
        shapes += [
            (f"h{i}_attn_c_attn", (d, 3 * d)),
            (f"h{i}_attn_c_proj", (d, d)),
            (f"h{i}_mlp_c_fc", (d, 4 * d)),
            (f"h{i}_mlp_c_proj", (4 * d, d)),
        ]
    return shapes


def model_shapes(model: str, quick: bool) -> list[tuple[str, tuple]]:
    """BERT-base's or GPT-2 small's shapes, or the same structure at d=128 with 2 layers for
    --quick."""
    fn = bert_shapes if model == "bert" else gpt2_shapes
    return fn(2, 128, 5000) if quick else fn()


METHODS = ("l1_unstructured", "random_structured", "ln_structured", "global_unstructured")


def _use_cache(lib: str, cache: str | None) -> None:
    if lib == "torch_compat":
        os.environ["JAXPRUNE_COMPILATION_CACHE"] = cache or "0"
    elif lib == "jaxprune" and cache:
        import jaxprune as jp

        jp.enable_compilation_cache(cache)


def import_job(lib: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    if lib == "torch":
        import torch.nn.utils.prune  # noqa: F401
    else:
        import torch_compat.prune  # noqa: F401
    return {"seconds": time.perf_counter() - t0, "jax_loaded": "jax" in sys.modules}


def mlp_job(lib: str, cache: str | None, rounds: int) -> dict[str, Any]:
    import torch

    _use_cache(lib, cache)
    if lib == "torch":
        from torch.nn.utils import prune
    else:
        from torch_compat import prune
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 2),
    )
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for layer in (model[0], model[2], model[4]):
            for name in ("weight", "bias"):
                prune.l1_unstructured(layer, name, amount=0.2)
        times.append(time.perf_counter() - t0)
    return {"first_s": times[0], "round_s": statistics.median(times[1:]), "rounds": times}


def model_job(lib: str, model: str, method: str, cache: str | None, quick: bool):
    shapes = model_shapes(model, quick)
    n_params = sum(s[0] * s[1] for _, s in shapes)
    if lib == "jaxprune":
        import jax

        import jaxprune as jp

        _use_cache(lib, cache)
        params = {
            name: {"kernel": jax.random.normal(jax.random.key(i), shape)}
            for i, (name, shape) in enumerate(shapes)
        }
        jax.block_until_ready(params)
        t0 = time.perf_counter()
        if method == "global_unstructured":
            masks = jp.global_unstructured(params, 0.5)
        elif method == "random_structured":
            masks = jp.prune(params, method, key=jax.random.key(0), amount=0.3)
        elif method == "ln_structured":
            masks = jp.prune(params, method, amount=0.3, n=2)
        else:
            masks = jp.prune(params, method, amount=0.3)
        pruned = jp.apply_masks(params, masks)
        jax.block_until_ready((masks, pruned))
        return {"first_s": time.perf_counter() - t0, "params": n_params}
    import torch

    _use_cache(lib, cache)
    if lib == "torch":
        from torch.nn.utils import prune
    else:
        from torch_compat import prune
    torch.manual_seed(0)
    modules = []
    for _, (fan_in, fan_out) in shapes:
        m = torch.nn.Module()
        m.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in))
        modules.append(m)
    t0 = time.perf_counter()
    if method == "global_unstructured":
        pairs = [(m, "weight") for m in modules]
        prune.global_unstructured(pairs, prune.L1Unstructured, amount=0.5)
    for m in modules:
        if method == "l1_unstructured":
            prune.l1_unstructured(m, "weight", amount=0.3)
        elif method == "random_structured":
            prune.random_structured(m, "weight", amount=0.3, dim=0)
        elif method == "ln_structured":
            prune.ln_structured(m, "weight", amount=0.3, n=2, dim=0)
    return {"first_s": time.perf_counter() - t0, "params": n_params}


def write_safetensors(path: str, model: str, quick: bool) -> int:
    """GPT-2 small's weights in torch's layout, as a ``.safetensors`` file."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        name: rng.standard_normal((fan_out, fan_in), dtype=np.float32)
        for name, (fan_in, fan_out) in model_shapes(model, quick)
    }
    save_file(tensors, path)
    return sum(t.size for t in tensors.values())


#: The torch side of the CLI row: load, global L1 over every 2-D weight, save.
TORCH_CLI = """
import sys, torch
from safetensors.torch import load_file, save_file
from torch.nn.utils import prune
tensors = load_file(sys.argv[1])
modules = {}
for name, t in tensors.items():
    if t.dim() >= 2 and t.is_floating_point():
        m = torch.nn.Module()
        m.weight = torch.nn.Parameter(t)
        modules[name] = m
prune.global_unstructured(
    [(m, "weight") for m in modules.values()], prune.L1Unstructured, amount=0.5
)
out = {n: (modules[n].weight.detach() if n in modules else t) for n, t in tensors.items()}
save_file({n: t.contiguous() for n, t in out.items()}, sys.argv[2])
"""


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _job(*args: str) -> dict[str, Any]:
    """One job in a fresh process."""
    cmd = [sys.executable, "-m", "benchmarks.suite._first", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _wall(cmd: list[str], cache: str | None) -> float:
    """A whole process's wall time (interpreter start and imports included)."""
    env = dict(os.environ, JAXPRUNE_COMPILATION_CACHE=cache or "0")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def rows(ctx: Any) -> list[Row]:
    """The FC rows: each figure from fresh processes; "cold" fills an empty cache, "warm"
    is the median of three processes after it (one for the model rows). ``--quick``: one
    process each, GPT-2's structure only, at d=128."""
    out: list[Row] = []
    reps = 1 if ctx.quick else 3
    wl = "FC first contact"
    ctx.progress("FC: import times")
    imports = {
        lib: statistics.median(_job("import", lib)["seconds"] for _ in range(reps))
        for lib in ("torch_compat", "torch")
    }
    out.append(
        Row(
            "fc_import",
            wl,
            "import the prune module (torch included), fresh process",
            torch_compat=imports["torch_compat"],
            torch=imports["torch"],
            targets=[Target("ratio>=", 1 / 1.3)],
            notes="torch_compat imports JAX at its first mask",
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        ctx.progress("FC: the ten-round MLP callback")
        cache = os.path.join(tmp, "mlp")
        torch_mlp = _job("mlp", "torch", "", "10")
        cold = _job("mlp", "torch_compat", cache, "10")
        warm = [_job("mlp", "torch_compat", cache, "10") for _ in range(reps)]
        what = "MLP callback (Linear 32-32-32-2, l1 0.2, weights + biases)"
        out += [
            Row(
                "fc_mlp_first_cold",
                wl,
                f"{what}: first round, fresh process, cold cache",
                torch_compat=cold["first_s"],
                torch=torch_mlp["first_s"],
                targets=[Target("value<=", 1.0)],
                notes="JAX's import included (torch_compat imports it at the first mask)",
            ),
            Row(
                "fc_mlp_first_warm",
                wl,
                f"{what}: first round, fresh process, warm cache",
                torch_compat=statistics.median(w["first_s"] for w in warm),
                torch=torch_mlp["first_s"],
                targets=[Target("value<=", 0.1)],
            ),
            Row(
                "fc_mlp_round",
                wl,
                f"{what}: one round, rounds 2-10",
                torch_compat=statistics.median(w["round_s"] for w in warm),
                torch=torch_mlp["round_s"],
                targets=[Target("ratio>=", 0.5)],
            ),
        ]
        ctx.progress("FC: the pruning tutorial as a script")
        cache = os.path.join(tmp, "tutorial")
        script = [sys.executable, "-m", "benchmarks.tutorial"]
        torch_s = statistics.median(_wall(script + ["torch"], None) for _ in range(reps))
        cold_s = _wall(script + ["torch_compat"], cache)
        warm_s = statistics.median(_wall(script + ["torch_compat"], cache) for _ in range(reps))
        for state, seconds in (("cold", cold_s), ("warm", warm_s)):
            out.append(
                Row(
                    f"fc_tutorial_{state}",
                    wl,
                    f"PyTorch's pruning tutorial as a script, whole process, {state} cache",
                    torch_compat=seconds,
                    torch=torch_s,
                    targets=[Target("ratio>=", 1 / 1.3)],
                    notes="interpreter start and imports included",
                )
            )
        for model in ("gpt2",) if ctx.quick else ("bert", "gpt2"):
            n = sum(a * b for _, (a, b) in model_shapes(model, ctx.quick))
            label = {"bert": "BERT-base", "gpt2": "GPT-2 small"}[model]
            label = f"{label}{' (2 layers, d=128)' if ctx.quick else ''}, {n / 1e6:.0f}M"
            for method in METHODS:
                ctx.progress(f"FC: {model} {method}, first calls")
                quick = "1" if ctx.quick else "0"
                got: dict[str, dict[str, float]] = {"cold": {}, "warm": {}}
                torch_first = _job("model", "torch", model, method, "", quick)["first_s"]
                for lib in ("jaxprune", "torch_compat"):
                    cache = os.path.join(tmp, f"{model}-{method}-{lib}")
                    got["cold"][lib] = _job("model", lib, model, method, cache, quick)["first_s"]
                    got["warm"][lib] = _job("model", lib, model, method, cache, quick)["first_s"]
                for state, goal in (("cold", 1.0), ("warm", 2.0)):
                    out.append(
                        Row(
                            f"fc_{model}_{method}_{state}",
                            f"FC {label}",
                            f"{method}, every weight: masks + pruned weights, first call of "
                            f"a fresh process, {state} cache",
                            jaxprune=got[state]["jaxprune"],
                            torch_compat=got[state]["torch_compat"],
                            torch=torch_first,
                            targets=[Target("ratio>=", goal)],
                            notes="torch_compat: JAX's import included",
                        )
                    )
        ctx.progress("FC: the CLI against a torch script, GPT-2 small as .safetensors")
        src = os.path.join(tmp, "model.safetensors")
        write_safetensors(src, "gpt2", ctx.quick)
        script = os.path.join(tmp, "torch_prune.py")
        with open(script, "w") as f:
            f.write(TORCH_CLI)
        torch_s = _wall([sys.executable, script, src, os.path.join(tmp, "t.safetensors")], None)
        cache = os.path.join(tmp, "cli")
        cli = [sys.executable, "-m", "jaxprune", "prune", src, os.path.join(tmp, "j.safetensors")]
        cli += ["--method", "l1_unstructured", "--amount", "0.5", "--global"]
        for state in ("cold", "warm"):
            out.append(
                Row(
                    f"fc_cli_{state}",
                    wl,
                    f"jaxprune prune --global l1 0.5 of GPT-2 small .safetensors, {state} cache",
                    jaxprune=_wall(cli, cache),
                    torch=torch_s,
                    targets=[Target("ratio>=", 1 / 1.5)],
                    notes="whole process: load, prune, save; torch: a short script",
                )
            )
    return out


def main(argv: list[str]) -> None:
    job, *args = argv
    if job == "import":
        out = import_job(args[0])
    elif job == "mlp":
        out = mlp_job(args[0], args[1] or None, int(args[2]))
    elif job == "model":
        lib, model, method, cache, quick = args
        out = model_job(lib, model, method, cache or None, quick == "1")
    else:
        raise SystemExit(f"unknown job {job!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
