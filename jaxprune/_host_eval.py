"""Evaluating a jaxpr's equations on the host: params-only values and per-channel constants.

:func:`on_host` evaluates an equation whose inputs are all known params values, and
:func:`per_channel` applies an elementwise primitive to one value per channel (float64, NaN
for "not a known constant"). Both use NumPy for the primitives met most, so that no program
is compiled for each new shape, and fall back to JAX itself for the rest.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def per_channel(eqn, vectors, size: int) -> np.ndarray:
    """The primitive applied to per-channel values in float64 (NaN where an operand's is
    NaN)."""
    args = [np.broadcast_to(np.asarray(v, np.float64), size) for v in vectors]
    unknown = np.zeros(size, bool)
    for a in args:
        unknown |= np.isnan(a)
    fn = _NUMPY.get(eqn.primitive.name)
    with np.errstate(all="ignore"):
        if fn is not None:
            out = np.asarray(fn(*args, **eqn.params), np.float64)
        else:  # a rarer primitive: JAX itself, in the operands' dtypes
            cast = [jax.numpy.asarray(a, v.aval.dtype) for a, v in zip(args, eqn.invars)]
            with jax.ensure_compile_time_eval():
                out = np.asarray(
                    eqn.primitive.bind(*cast, **eqn.primitive.get_bind_params(eqn.params)),
                    np.float64,
                )
    return np.where(unknown, np.nan, np.broadcast_to(out, size))


def on_host(eqn, values: list[Any]) -> list[Any]:
    """Evaluate a params-only equation: in NumPy for the common primitives (no program to
    compile for each new shape), else with JAX."""
    name = eqn.primitive.name
    out_aval = eqn.outvars[0].aval if eqn.outvars else None
    fn = _NUMPY.get(name)
    arrays = [np.asarray(v) for v in values]
    with np.errstate(all="ignore"):
        if fn is not None and not eqn.primitive.multiple_results:
            dtype = np.dtype(out_aval.dtype)
            return [np.asarray(fn(*arrays, **eqn.params)).astype(dtype, copy=False)]
        if name == "reshape":
            return [arrays[0].reshape(eqn.params["new_sizes"])]
        if name == "broadcast_in_dim":
            shape, dims = eqn.params["shape"], eqn.params["broadcast_dimensions"]
            expanded = [1] * len(shape)
            for i, d in enumerate(dims):
                expanded[d] = arrays[0].shape[i]
            return [np.broadcast_to(arrays[0].reshape(expanded), shape)]
        if name == "transpose":
            return [arrays[0].transpose(eqn.params["permutation"])]
        if name == "squeeze":
            return [arrays[0].squeeze(tuple(eqn.params["dimensions"]))]
    params = eqn.primitive.get_bind_params(eqn.params)
    out = eqn.primitive.bind(*values, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def _select_n(pred, *cases, **_):
    return np.choose(np.asarray(pred).astype(np.int64), cases)


def _erf(x, **_):

    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _unary(f):
    return lambda x, **_: f(x)


def _binary(f):
    return lambda x, y, **_: f(x, y)


#: NumPy versions of the elementwise primitives met most (keyword arguments: the
#: equation's params).
_NUMPY = {
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "div": _binary(np.divide),
    "max": _binary(np.maximum),
    "min": _binary(np.minimum),
    "pow": _binary(np.power),
    "neg": _unary(np.negative),
    "exp": _unary(np.exp),
    "log": _unary(np.log),
    "log1p": _unary(np.log1p),
    "expm1": _unary(np.expm1),
    "tanh": _unary(np.tanh),
    "logistic": _unary(lambda x: 1.0 / (1.0 + np.exp(-x))),
    "abs": _unary(np.abs),
    "sqrt": _unary(np.sqrt),
    "rsqrt": _unary(lambda x: 1.0 / np.sqrt(x)),
    "square": _unary(np.square),
    "sign": _unary(np.sign),
    "erf": _erf,
    "integer_pow": lambda x, y, **_: np.power(x, y),
    "convert_element_type": _unary(lambda x: x),
    "stop_gradient": _unary(lambda x: x),
    "copy": _unary(lambda x: x),
    "copy_p": _unary(lambda x: x),
    "select_n": _select_n,
    "gt": _binary(np.greater),
    "lt": _binary(np.less),
    "ge": _binary(np.greater_equal),
    "le": _binary(np.less_equal),
    "eq": _binary(np.equal),
    "ne": _binary(np.not_equal),
}
