"""JAX's persistent compilation cache: on by default in the CLI and torch_compat, in the
directory ``JAXPRUNE_COMPILATION_CACHE`` names, off when it says 0; a JAX cache the user set
is kept; the library itself turns nothing on. Each case runs in a fresh process."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Prunes a small torch MLP with torch_compat, then reports where the cache is and how many
#: programs JAX loaded from it.
TORCH_COMPAT = """
import json, jax, torch
from jax._src import monitoring
hits = []
monitoring.register_event_listener(
    lambda e, **k: hits.append(e) if e == "/jax/compilation_cache/cache_hits" else None)
from torch_compat import prune
torch.manual_seed(0)
m = torch.nn.Linear(16, 8)
prune.l1_unstructured(m, "weight", amount=0.5)
prune.random_structured(m, "weight", amount=0.25, dim=0)
from jax._src import xla_bridge
print(json.dumps({"dir": jax.config.jax_compilation_cache_dir, "hits": len(hits),
                  "zeros": int((m.weight == 0).sum()),
                  "async": xla_bridge._CPU_ENABLE_ASYNC_DISPATCH.value}))
"""


def _run(code, env_value, tmp_path, *, home=None, extra=()):
    env = dict(os.environ)
    env.pop("JAXPRUNE_COMPILATION_CACHE", None)
    if env_value is not None:
        env["JAXPRUNE_COMPILATION_CACHE"] = env_value
    env["XDG_CACHE_HOME"] = str(home or tmp_path / "xdg")
    out = subprocess.run(
        [sys.executable, "-c", code, *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _entries(path):
    return sorted(p for p in os.listdir(path)) if os.path.isdir(path) else []


def test_torch_compat_caches_by_default_and_a_second_process_loads(tmp_path):
    first = _run(TORCH_COMPAT, None, tmp_path)
    where = os.path.join(tmp_path, "xdg", "jaxprune", "xla")
    assert first["dir"] == os.path.realpath(where)
    assert first["hits"] == 0 and len(_entries(where)) >= 1
    assert first["async"] is False  # torch_compat started JAX: synchronous CPU dispatch
    second = _run(TORCH_COMPAT, None, tmp_path)
    assert second["hits"] >= 1  # loaded, not compiled
    assert second["zeros"] == first["zeros"] > 64  # the same masks, loaded or compiled


def test_the_environment_variable_moves_or_turns_off_the_cache(tmp_path):
    moved = tmp_path / "elsewhere"
    got = _run(TORCH_COMPAT, str(moved), tmp_path)
    assert got["dir"] == os.path.realpath(moved) and _entries(moved)
    off = _run(TORCH_COMPAT, "0", tmp_path)
    assert off["dir"] is None
    assert not _entries(tmp_path / "xdg" / "jaxprune" / "xla")


def test_a_cache_the_user_configured_is_kept(tmp_path):
    mine = tmp_path / "mine"
    code = f"import jax; jax.config.update('jax_compilation_cache_dir', {str(mine)!r})\n"
    got = _run(code + TORCH_COMPAT, None, tmp_path)
    assert got["dir"] == str(mine)
    assert not _entries(tmp_path / "xdg" / "jaxprune" / "xla")


def test_the_library_turns_nothing_on_and_the_cli_does(tmp_path):
    code = (
        "import json, jax, jaxprune as jp, jax.numpy as jnp\n"
        "jp.prune({'w': jnp.ones((4, 4))}, 'l1_unstructured', amount=0.5)\n"
        "print(json.dumps({'dir': jax.config.jax_compilation_cache_dir}))\n"
    )
    assert _run(code, None, tmp_path)["dir"] is None
    import numpy as np

    np.savez(tmp_path / "w.npz", w=np.arange(16.0).reshape(4, 4))
    cli = (
        "import json, sys, jax\n"
        "from jaxprune import _cli\n"
        "code = _cli.main(sys.argv[1:])\n"
        "print(json.dumps({'dir': jax.config.jax_compilation_cache_dir, 'code': code}))\n"
    )
    args = (
        "prune",
        str(tmp_path / "w.npz"),
        str(tmp_path / "o.npz"),
        "--method",
        "l1_unstructured",
        "--amount",
        "0.5",
    )
    got = _run(cli, None, tmp_path, extra=args)
    assert got["code"] == 0
    assert got["dir"] == os.path.realpath(tmp_path / "xdg" / "jaxprune" / "xla")
    assert _entries(got["dir"])


def test_enable_compilation_cache_makes_its_directory(tmp_path):
    code = (
        "import json, sys, jaxprune as jp\n"
        "print(json.dumps({'dir': jp.enable_compilation_cache(sys.argv[1])}))\n"
    )
    got = _run(code, "0", tmp_path, extra=(str(tmp_path / "a" / "b"),))
    assert got["dir"] == os.path.realpath(tmp_path / "a" / "b")
    assert os.path.isdir(got["dir"])


@pytest.mark.parametrize("value", ["off", "false", "0"])
def test_every_off_spelling(tmp_path, value):
    from jaxprune import _cache

    os.environ[_cache.ENV] = value
    try:
        assert _cache.enable_by_default() is None
    finally:
        os.environ[_cache.ENV] = "0"
