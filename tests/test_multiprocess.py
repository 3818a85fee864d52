"""Two local processes joined by jax.distributed (CPU collectives over gloo): a global array
sharded across both is pruned to the masks a single process computes."""

import os
import socket
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port = int(sys.argv[1]), sys.argv[2]
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                               process_id=pid, initialization_timeout=60)
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import jaxprune as jp

    assert jax.process_count() == 2 and jax.device_count() == 2
    rng = np.random.default_rng(0)
    full = {"w1": rng.standard_normal((64, 32)).astype(np.float32),
            "w2": rng.standard_normal((32, 16)).astype(np.float32)}
    mesh = Mesh(np.array(jax.devices()), ("x",))
    specs = {"w1": P(None, "x"), "w2": P("x", None)}
    glob = {k: jax.make_array_from_callback(v.shape, NamedSharding(mesh, specs[k]),
                                            lambda idx, v=v: v[idx]) for k, v in full.items()}

    def same(got, ref):
        for k in full:
            g = np.asarray(multihost_utils.process_allgather(got[k], tiled=True))
            assert (g == np.asarray(ref[k])).all(), k

    for kw in (dict(method="random_structured", key=jax.random.key(3), amount=0.5),
               dict(method="random_unstructured", key=jax.random.key(4), amount=0.3),
               dict(method="ln_structured", amount=0.25, n=2),
               dict(method="l1_unstructured", amount=0.5)):
        same(jp.prune(glob, **kw), jp.prune(full, **kw))
    same(jp.global_unstructured(glob, 0.5), jp.global_unstructured(full, 0.5))
    print(pid, "ok", flush=True)
    jax.distributed.shutdown()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_prune_a_global_array(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, err[-3000:]
        assert f"{i} ok" in out
