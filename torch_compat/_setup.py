"""JAX's configuration for torch_compat, applied once, when a mask is first computed.

torch_compat imports JAX only then (``import torch_compat.prune`` costs what torch's module
costs). Two settings, each with an environment variable to keep JAX's default:

- JAX's persistent compilation cache, on by default (``JAXPRUNE_COMPILATION_CACHE``, see
  :mod:`jaxprune._cache`): a script, a test process or a training run compiles a pruning
  program once per machine, not once per process.
- CPU computations run synchronously (``jax_cpu_enable_async_dispatch=False``) when JAX's
  backend is not running yet: every mask goes straight back to torch, so asynchronous
  dispatch only adds a hand-over between threads (70 us of the 90 us a small selection
  costs). ``JAXPRUNE_ASYNC_DISPATCH=1`` keeps JAX's default; a process whose JAX started
  before torch_compat's first mask keeps whatever it has.
"""

from __future__ import annotations

import os

_done = False


def configure() -> None:
    """Apply the settings above (once per process)."""
    global _done
    if _done:
        return
    _done = True
    import jax

    from jaxprune import _cache

    _cache.enable_by_default()
    if os.environ.get("JAXPRUNE_ASYNC_DISPATCH", "").strip() not in ("1", "on", "true"):
        from jax._src import xla_bridge

        if not xla_bridge.backends_are_initialized():
            jax.config.update("jax_cpu_enable_async_dispatch", False)
