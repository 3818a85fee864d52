"""Pruning sharded parameters on 8 CPU devices (a subprocess: the device count must be set
before JAX starts): the same masks as on one device, masks and pruned weights sharded like
their weights, and no all-gather as large as a weight in the compiled programs."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
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
    print("ok")
    """
)


def test_sharded_pruning_matches_and_never_gathers_weights():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
