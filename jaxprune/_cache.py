"""JAX's persistent compilation cache, turned on for one-shot users.

A pruning program compiles in 0.1 to 1 s on a CPU and loads from JAX's on-disk cache in a
few milliseconds. The command-line tool and torch_compat are used one process at a time
(one CLI run, one script, one training callback per epoch in a new test process), so they
turn the cache on by default with :func:`enable_by_default`; the library itself leaves JAX's
configuration to its user, who can call :func:`enable_compilation_cache`.

The environment variable ``JAXPRUNE_COMPILATION_CACHE`` decides the default: unset, the
cache lives in ``$XDG_CACHE_HOME/jaxprune/xla`` (``~/.cache/jaxprune/xla``); ``0``, ``off``
or ``false`` turns it off; any other value is the directory to use. A cache directory the
user configured in JAX (``jax_compilation_cache_dir``) is always kept as it is.
"""

from __future__ import annotations

import os

#: The environment variable that moves or turns off the default cache.
ENV = "JAXPRUNE_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no"}


def default_dir() -> str:
    """The default cache directory (under ``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxprune", "xla")


def enable_compilation_cache(path: str | os.PathLike[str] | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache for this process, in ``path``.

    Compiled pruning programs are then saved to disk, and a later process that prunes the
    same shapes loads them instead of compiling (a first call on a 124M-parameter model goes
    from seconds to a fraction of one: benchmarks/RESULTS.md, "First contact"). Every program
    is cached, however fast it compiled (``jax_persistent_cache_min_compile_time_secs`` is set
    to 0): pruning programs are many and small.

    Nothing changes when JAX already has a cache directory (the user's own configuration
    wins); the directory in force is returned. The cache is trusted code: keep it in a
    directory only you can write to.

    Args:
        path: the directory; None for :func:`default_dir`. It is created if missing.

    Returns:
        The cache directory in force, or None when it cannot be created (nothing changes).

    Example:
        >>> import os, tempfile, jaxprune as jp
        >>> where = jp.enable_compilation_cache(os.path.join(tempfile.mkdtemp(), "xla"))
        >>> os.path.isdir(where)
        True
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    where = os.path.realpath(os.fspath(path) if path is not None else default_dir())
    try:
        os.makedirs(where, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    cc.set_cache_dir(where)
    # JAX decides once per process whether a cache is used; a process that compiled before
    # this call has decided "no", and is asked again.
    reset = getattr(cc, "reset_cache", None)
    if reset is not None:
        reset()
    return where


def enable_by_default() -> str | None:
    """:func:`enable_compilation_cache` as the CLI and torch_compat do it: unless
    ``JAXPRUNE_COMPILATION_CACHE`` turns it off, in the directory it names or the default."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    return enable_compilation_cache(setting or None)
