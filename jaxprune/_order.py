"""Order keys: scores as unsigned integers ordered like the selection orders them.

Floats and signed integers are ordered by magnitude with every NaN above +inf; unsigned
integers (random bits) as they are. :class:`Keys` answers comparisons against a key; the keys
of float scores are never stored.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ._typing import Array

#: The sample that brackets a large selection takes every STRIDE-th entry along the first
#: and the last axis.
STRIDE = 8


def order_key(scores: Array) -> Array:
    """Unsigned integers ordered as ``|scores|``, with every NaN above +inf.

    Floats up to 32 bits map to ``uint32`` (exact: float16 and bfloat16 widen losslessly),
    float64 to ``uint64``; integers map to the unsigned type of their magnitude (the magnitude
    of the most negative value included).
    """
    dtype = scores.dtype
    if jnp.issubdtype(dtype, jnp.floating):
        wide = jnp.float64 if dtype.itemsize == 8 else jnp.float32
        mag = jnp.abs(scores.astype(wide))
        mag = jnp.where(jnp.isnan(mag), jnp.array(jnp.nan, wide), mag)
        return lax.bitcast_convert_type(mag, jnp.uint64 if dtype.itemsize == 8 else jnp.uint32)
    if jnp.issubdtype(dtype, jnp.signedinteger):
        if dtype.itemsize == 8:
            return jnp.abs(scores).astype(jnp.uint64)
        return jnp.abs(scores.astype(jnp.int32)).astype(jnp.uint32)
    if jnp.issubdtype(dtype, jnp.unsignedinteger):
        return scores.astype(jnp.uint64 if dtype.itemsize == 8 else jnp.uint32)
    raise TypeError(f"cannot rank scores of dtype {dtype}")


def signed_key(scores: Array) -> Array:
    """Unsigned integers ordered as ``scores`` themselves (lowest first), every NaN above
    +inf, and -0.0 equal to +0.0: the keys of a registered method's scores.

    Floats up to 32 bits and integers up to 32 bits map to ``uint32``, 64-bit ones to
    ``uint64``; booleans and unsigned integers are taken as they are.
    """
    dtype = scores.dtype
    wide = dtype.itemsize == 8
    unsigned = jnp.uint64 if wide else jnp.uint32
    if dtype == jnp.bool_ or jnp.issubdtype(dtype, jnp.unsignedinteger):
        return scores.astype(unsigned)
    top = jnp.array(1 << (8 * jnp.dtype(unsigned).itemsize - 1), unsigned)
    if jnp.issubdtype(dtype, jnp.signedinteger):
        signed = scores.astype(jnp.int64 if wide else jnp.int32)
        return lax.bitcast_convert_type(signed, unsigned) ^ top
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"cannot rank scores of dtype {dtype}")
    x = scores.astype(jnp.float64 if wide else jnp.float32)
    # -0.0 as +0.0 (XLA folds away ``x + 0.0``, so a select), and one NaN, the positive one.
    x = jnp.where(x == 0, jnp.zeros((), x.dtype), x)
    x = jnp.where(jnp.isnan(x), jnp.array(jnp.nan, x.dtype), x)
    bits = lax.bitcast_convert_type(x, unsigned)
    return jnp.where(bits >= top, ~bits, bits | top)


def sample(x: Array) -> Array:
    """Every STRIDE-th entry along the first and the last axis (every STRIDE**2-th of a
    vector): a strided view that keeps every other axis, and so any sharding, as it is."""
    if x.ndim == 0:
        return x
    index = [slice(None)] * x.ndim
    if x.ndim == 1:
        index[0] = slice(None, None, STRIDE * STRIDE)
    else:
        index[0] = slice(None, None, STRIDE)
        index[-1] = slice(None, None, STRIDE)
    return x[tuple(index)]


class Keys:
    """The order keys of one array of scores (see :func:`order_key`), as comparisons.

    Keys of floats are never stored: a pass compares ``|x|`` with the float a key stands for
    instead. Such a pass is compute-bound (about twice the time of a pass over stored keys),
    but a stored key array (4 bytes a weight: 1.2 GB for GPT-2-medium) costs more to
    write and to page in on every call. Other scores (integers; random bits, which are keys
    already) are mapped once.
    """

    def __init__(self, scores: Array, kdtype):
        self.kdtype = jnp.dtype(kdtype)
        self.implicit = bool(jnp.issubdtype(scores.dtype, jnp.floating))
        self.data = scores if self.implicit else order_key(scores).astype(kdtype)
        self.shape, self.size, self.ndim = scores.shape, scores.size, scores.ndim
        if self.implicit:
            wide = self.kdtype.itemsize == 8
            self._float = jnp.float64 if wide else jnp.float32
            self._inf = jnp.array(0x7FF0000000000000 if wide else 0x7F800000, kdtype)
            self._nan = order_key(jnp.array(jnp.nan, self._float))

    def le(self, v: Array) -> Array:
        """Whether each key is at most ``v``."""
        if not self.implicit:
            return self.data <= v
        bound = lax.bitcast_convert_type(jnp.minimum(v, self._inf), self._float)
        x = self.data.astype(self._float)
        return (v >= self._nan) | ((x <= bound) & (x >= -bound))

    def lt(self, v: Array) -> Array:
        """Whether each key is below ``v``."""
        return self.data < v if not self.implicit else (v > 0) & self.le(v - 1)

    def eq(self, v: Array) -> Array:
        """Whether each key is ``v``."""
        return self.data == v if not self.implicit else self.le(v) & ~self.lt(v)

    def value(self) -> Array:
        """The keys themselves."""
        return order_key(self.data).astype(self.kdtype) if self.implicit else self.data

    def sample(self) -> Array:
        """The keys of a strided sample (:func:`sample`)."""
        part = sample(self.data)
        return order_key(part).astype(self.kdtype) if self.implicit else part
