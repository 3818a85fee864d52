"""PRNG key rules: explicit keys only, both key styles, stable per-path keys."""

from __future__ import annotations

import functools
import hashlib

import jax
import jax.numpy as jnp

from ._typing import PRNGKey


def as_key(key: object, name: str = "key") -> PRNGKey:
    """Return ``key`` as a new-style typed key.

    Accepts ``jax.random.key(s)`` (typed, shape ``()``) and the legacy ``jax.random.PRNGKey(s)``
    (``uint32[2]``); both give the same random numbers. Works on traced keys (under ``vmap``
    each call sees one key).

    Raises:
        TypeError: ``key`` is missing, an integer seed, or an array that is not a key.
    """
    if key is None:
        raise TypeError(f"{name} is required: pass jax.random.key(seed).")
    if isinstance(key, (int, float)) or not hasattr(key, "dtype"):
        raise TypeError(
            f"{name} must be a JAX PRNG key such as jax.random.key(0); got {key!r}. "
            "Integer seeds are not accepted: keys are always explicit."
        )
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise TypeError(
                f"{name} must be a single key of shape (); got a batch of shape {key.shape}. "
                "Use jax.vmap to prune with many keys."
            )
        return key
    if key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    raise TypeError(
        f"{name} must be a JAX PRNG key (jax.random.key or jax.random.PRNGKey); got an array "
        f"of dtype {key.dtype} and shape {key.shape}."
    )


@functools.lru_cache(maxsize=4096)
def path_hash(path: str) -> int:
    """A 31-bit hash of a path string, the same in every process and Python version."""
    digest = hashlib.blake2b(path.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def leaf_key(key: PRNGKey, path: str) -> PRNGKey:
    """The key :func:`jaxprune.prune` gives the leaf at ``path``: ``fold_in(key, hash(path))``.

    Use it to prune a twin of a Flax model (the same model in PyTorch, say) exactly as the
    pytree layer pruned it.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> params = {"Dense_0": {"kernel": jnp.ones((4, 8))}}
        >>> key = jax.random.key(0)
        >>> masks = jp.prune(params, "random_structured", key=key, amount=0.5)
        >>> twin = jp.random_structured(jp.leaf_key(key, "Dense_0/kernel"), jnp.ones((8, 4)),
        ...                             0.5, dim=0)
        >>> bool((twin.reshape(-1) == masks["Dense_0"]["kernel"].reshape(-1)).all())
        True
    """
    return jax.random.fold_in(as_key(key), path_hash(path))
