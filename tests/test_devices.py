"""Everything that needs 8 devices, in one subprocess (the CPU device count must be set
before JAX starts, so the scripts share one process instead of starting one each):

- pruning sharded parameters: the same masks as on one device, masks and pruned weights
  sharded like their weights, no all-gather as large as a weight in the compiled programs,
  and ahead-of-time compilation;
- keep_pruned under pmap and on sharded params.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SHARDING = textwrap.dedent(
    r"""
    import math, re, jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import jaxprune as jp
    from jaxprune import _batch

    assert jax.device_count() == 8
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"w1": jax.random.normal(k1, (256, 512)), "w2": jax.random.normal(k2, (512, 128))}
    layouts = {
        "replicated": {"w1": P(), "w2": P()},
        "fsdp": {"w1": P("data", None), "w2": P("data", None)},
        "tp": {"w1": P(None, "model"), "w2": P("model", None)},
        "both": {"w1": P("data", "model"), "w2": P("model", "data")},
    }
    calls = {
        "random_structured": dict(method="random_structured", key=jax.random.key(1), amount=0.3),
        "ln_structured": dict(method="ln_structured", amount=0.3, n=2),
        "l1_unstructured": dict(method="l1_unstructured", amount=0.5),
        "random_unstructured": dict(method="random_unstructured", key=jax.random.key(2),
                                    amount=0.5),
    }

    def gathered_sizes(fn, *args):
        hlo = jax.jit(fn).lower(*args).compile().as_text()
        sizes = []
        for line in hlo.splitlines():
            if "all-gather(" in line or "all-gather-start(" in line:
                dims = re.search(r"= \w+\[([\d,]*)\]", line).group(1)
                sizes.append(math.prod(int(d) for d in dims.split(",") if d))
        return sizes

    smallest_weight = min(x.size for x in params.values())
    for lname, specs in layouts.items():
        shard = {k: NamedSharding(mesh, v) for k, v in specs.items()}
        sp = jax.device_put(params, shard)
        for cname, kw in calls.items():
            ref = jp.prune(params, **kw)
            got = jp.prune(sp, **kw)
            for k in params:
                np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(ref[k]))
                want = list(specs[k]) + [None] * (2 - len(specs[k]))
                if got[k].shape != params[k].shape:  # keepdims: only the channel axis
                    want = [None, want[1]]
                assert got[k].sharding.is_equivalent_to(NamedSharding(mesh, P(*want)), 2), (
                    lname, cname, k, got[k].sharding)
            pruned = jp.apply_masks(sp, got)
            for k in params:
                assert pruned[k].sharding.is_equivalent_to(shard[k], 2)
            sizes = gathered_sizes(lambda p, kw=kw: jp.prune(p, **kw), sp)
            assert all(s < smallest_weight for s in sizes), (lname, cname, sizes)
            # Ahead-of-time compilation after an unsharded call of the same function (a
            # cached tracer once made the compiled program expect extra inputs).
            f = lambda p, kw=kw: jp.prune(p, **kw)  # noqa: E731
            _batch._row_index.cache_clear()  # as in a fresh process
            jax.jit(f)(params)
            aot = jax.jit(f).lower(sp).compile()(sp)
            for k in params:
                np.testing.assert_array_equal(np.asarray(aot[k]), np.asarray(ref[k]))

        ref = jp.global_unstructured(params, 0.5)
        got = jp.global_unstructured(sp, 0.5)
        for k in params:
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(ref[k]))
            assert got[k].sharding.is_equivalent_to(shard[k], 2)
        sizes = gathered_sizes(lambda p: jp.global_unstructured(p, 0.5), sp)
        assert all(s < smallest_weight for s in sizes), (lname, "global", sizes)
    print("sharding ok")
    """
)


KEEP_PRUNED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import jaxprune as jp

    assert jax.device_count() == 8
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"w1": jax.random.normal(k1, (16, 32)), "w2": jax.random.normal(k2, (32, 8))}
    masks = jp.prune(params, "random_structured", key=jax.random.key(1), amount=0.5)
    x = jax.random.normal(jax.random.key(2), (64, 16))

    def loss(p, x):
        return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"]) ** 2)

    tx = jp.keep_pruned(optax.adam(1e-2), masks)

    def run(params, state, step, n=20):
        for _ in range(n):
            params, state = step(params, state)
        return params

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(loss)(p, x), s, p)
        return optax.apply_updates(p, u), s

    single = run(params, tx.init(params), step)

    # Tensor-parallel along the output axis, FSDP along the input axis.
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    shard = {
        "w1": NamedSharding(mesh, P("data", "model")),
        "w2": NamedSharding(mesh, P("model", None)),
    }
    sharded_params = jax.device_put(params, shard)
    state = jax.device_put(tx.init(sharded_params))
    out = run(sharded_params, state, step)
    assert out["w1"].sharding.is_equivalent_to(shard["w1"], 2)
    for k in params:
        m = np.broadcast_to(np.asarray(masks[k]), params[k].shape)
        assert (np.asarray(out[k])[~m] == 0).all()
        np.testing.assert_allclose(np.asarray(out[k]), np.asarray(single[k]), rtol=2e-5, atol=2e-6)

    # pmap: data parallel, gradients averaged across 8 devices.
    xs = x.reshape(8, 8, 16)

    def pstep(p, s, xb):
        g = jax.lax.pmean(jax.grad(loss)(p, xb), "i")
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    pstep = jax.pmap(pstep, axis_name="i")
    stack = lambda t: jax.tree.map(lambda a: jnp.stack([a] * 8), t)
    rep, rstate = stack(params), stack(tx.init(params))
    for _ in range(20):
        rep, rstate = pstep(rep, rstate, xs)
    for k in params:
        m = np.broadcast_to(np.asarray(masks[k]), params[k].shape)
        assert (np.asarray(rep[k])[:, ~m] == 0).all()
        np.testing.assert_allclose(
            np.asarray(rep[k][0]), np.asarray(single[k]), rtol=2e-5, atol=2e-6
        )
    print("keep_pruned ok")
    """
)


RUNNER = """
import json, traceback

results = {}
for name, source in SCRIPTS.items():
    try:
        exec(compile(source, name, "exec"), {"__name__": name})
        results[name] = "ok"
    except BaseException:
        results[name] = traceback.format_exc()[-3000:]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def on_8_devices():
    scripts = {"sharding": SHARDING, "keep_pruned": KEEP_PRUNED}
    program = f"SCRIPTS = {scripts!r}\n" + RUNNER
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=900, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_sharded_pruning_matches_and_never_gathers_weights(on_8_devices):
    results, out = on_8_devices
    assert results["sharding"] == "ok", results["sharding"]
    assert "sharding ok" in out


def test_keep_pruned_pmap_and_sharded(on_8_devices):
    results, out = on_8_devices
    assert results["keep_pruned"] == "ok", results["keep_pruned"]
    assert "keep_pruned ok" in out
