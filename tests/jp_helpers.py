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
