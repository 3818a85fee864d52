"""keep_pruned under pmap and on sharded params, on 8 CPU devices (in a subprocess, since
the device count must be set before JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
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
    print("ok")
    """
)


def test_keep_pruned_pmap_and_sharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
