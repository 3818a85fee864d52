"""Shared helpers for jaxprune's tests."""

import jax
import numpy as np


def ref_lowest(keys: np.ndarray, alive: np.ndarray, k: int) -> np.ndarray:
    """NumPy reference of the tie rule: order by (key, position); NaN after everything."""
    keys = np.asarray(keys)
    alive = np.broadcast_to(np.asarray(alive), keys.shape).ravel()
    keys = keys.ravel()
    idx = np.flatnonzero(alive)
    order = idx[np.argsort(keys[idx], kind="stable")]
    pruned = np.zeros(keys.shape, bool)
    pruned[order[:k]] = True
    return pruned


def call(mode, fn, *arrays):
    if mode == "jit":
        return jax.jit(fn)(*arrays)
    return fn(*arrays)


class Programs:
    """Counts the programs JAX builds (lowers to XLA, then compiles or loads from the
    persistent cache) while the context is open: ``with Programs() as p: ...; p.count``."""

    EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"

    def __init__(self):
        self.count = 0

    def _listen(self, event, duration, **kwargs):
        if event == self.EVENT:
            self.count += 1

    def __enter__(self):
        from jax._src import monitoring

        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        from jax._src import monitoring

        monitoring.unregister_event_duration_listener(self._listen)
