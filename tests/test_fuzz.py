"""Fuzzing the public API: every call returns a valid mask or raises a documented exception
with a message, and never modifies its inputs."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import jaxprune as jp

DOCUMENTED = (TypeError, ValueError, IndexError)

# Shapes from a small pool, so that examples hit the compile cache (each new shape compiles);
# the pool has every rank from 0 to 4, size-1 and size-0 axes, and mostly valid shapes.
shapes = st.sampled_from(
    [(3, 4), (4, 1), (1, 3, 2), (2, 3, 4), (2, 2, 2, 2), (4, 4), (), (3,), (0,), (0, 4), (2, 0, 3)]
)
# Mostly valid inputs, so that both outcomes are exercised (see --hypothesis-show-statistics).
dtypes = st.sampled_from(["float32"] * 4 + ["float16", "bfloat16", "int32", "bool", "complex64"])
amounts = st.one_of(
    st.floats(0.0, 1.0),
    st.integers(0, 3),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([None, "0.5", [0.5], 0.5 + 0j]),
)
dims = st.one_of(st.integers(-2, 1), st.integers(-6, 6), st.sampled_from([0.0, None, "1"]))
norms = st.sampled_from([1, 2, 0.5, 0, -1, np.inf, -np.inf, "fro"] * 2 + ["nuc", None, "x"])


@st.composite
def arrays(draw, shape_strategy=shapes):
    shape = draw(shape_strategy)
    dtype = draw(dtypes)
    values = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape) * 3
    if dtype == "bool":
        return values > 0
    if dtype == "complex64":
        return values.astype(np.complex64)
    return jnp.asarray(values).astype(dtype)


@st.composite
def masks_for(draw, shape):
    kind = draw(st.sampled_from(["none", "full", "keepdims", "wrong", "scalar"]))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    if kind == "none":
        return None
    if kind == "full":
        return rng.random(shape) > 0.3
    if kind == "keepdims" and shape:
        s = [1] * len(shape)
        s[-1] = shape[-1]
        return rng.random(s) > 0.3
    if kind == "wrong":
        return rng.random(tuple(d + 1 for d in shape) or (2,)) > 0.3
    return np.array(True)


def _check_mask(mask, x):
    assert isinstance(mask, jax.Array) and mask.dtype == jnp.bool_
    assert np.broadcast_shapes(mask.shape, np.shape(x)) == np.shape(x)


def _snapshot(*values):
    return [None if v is None else np.array(v, copy=True) for v in values]


def _unchanged(before, *values):
    for b, v in zip(before, values):
        if b is not None:
            np.testing.assert_array_equal(np.asarray(v), b)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_core_methods(data):
    x = data.draw(arrays())
    shape = np.shape(x)
    method = data.draw(
        st.sampled_from(
            [
                "random_unstructured",
                "l1_unstructured",
                "random_structured",
                "ln_structured",
                "custom_from_mask",
                "identity",
            ]
        )
    )
    prior = data.draw(masks_for(shape))
    scores = data.draw(st.sampled_from([None, "same", "wrong"]))
    scores = {
        None: None,
        "same": np.ones(shape, np.float32),
        "wrong": np.ones(tuple(d + 1 for d in shape) or (3,), np.float32),
    }[scores]
    amount, dim, n = data.draw(amounts), data.draw(dims), data.draw(norms)
    key = data.draw(st.sampled_from([jax.random.key(1)] * 3 + [jax.random.PRNGKey(2), 3, None]))
    before = _snapshot(x, prior, scores)
    call = {
        "random_unstructured": lambda: jp.random_unstructured(key, x, amount, default_mask=prior),
        "l1_unstructured": lambda: jp.l1_unstructured(
            x, amount, default_mask=prior, importance_scores=scores
        ),
        "random_structured": lambda: jp.random_structured(key, x, amount, dim, default_mask=prior),
        "ln_structured": lambda: jp.ln_structured(
            x, amount, n, dim, default_mask=prior, importance_scores=scores
        ),
        "custom_from_mask": lambda: jp.custom_from_mask(
            x, prior if prior is not None else np.ones(shape, bool)
        ),
        "identity": lambda: jp.identity(x),
    }[method]
    try:
        mask = call()
    except DOCUMENTED as e:
        assert str(e)
        event(f"{method}: {type(e).__name__}")
    else:
        event(f"{method}: mask")
        _check_mask(mask, x)
        if prior is not None and method != "identity":
            assert not bool(jnp.any(mask & ~jnp.asarray(prior)))  # nothing revived
    _unchanged(before, x, prior, scores)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_pytree_layer(data):
    params = {
        "a": {
            "kernel": data.draw(arrays(st.sampled_from([(3, 4), (0, 2), (2, 2, 3)]))),
            "bias": data.draw(arrays(st.sampled_from([(4,), (0,), ()]))),
        },
        "b": data.draw(arrays(st.sampled_from([(5, 3), (3,)]))),
    }
    names = ["random_unstructured", "l1_unstructured", "random_structured", "ln_structured"]
    method = data.draw(st.sampled_from(names * 3 + ["nope", jp.identity, len]))
    where = data.draw(
        st.sampled_from([None, None, "kernel", "a/", "nothing", "(", lambda p, x: True, 3])
    )
    kwargs = {"amount": data.draw(amounts)}
    if method in ("random_structured", "ln_structured"):
        kwargs["dim"] = data.draw(dims)
    if method == "ln_structured":
        kwargs["n"] = data.draw(norms)
    if method in ("random_unstructured", "random_structured"):
        kwargs["key"] = data.draw(st.sampled_from([jax.random.key(0)] * 3 + [7, None]))
    if data.draw(st.booleans()) and data.draw(st.booleans()):
        kwargs["bogus"] = 1
    before = jax.tree.map(lambda v: np.array(v, copy=True), params)
    try:
        masks = jp.prune(params, method, where=where, **kwargs)
    except DOCUMENTED as e:
        assert str(e)
        event(f"prune: {type(e).__name__}")
    else:
        event("prune: masks")
        for path in ("a/kernel", "a/bias", "b"):
            leaf = params["a"][path[2:]] if path.startswith("a/") else params["b"]
            m = masks["a"][path[2:]] if path.startswith("a/") else masks["b"]
            _check_mask(m, leaf)
    try:
        g = jp.global_unstructured(params, kwargs.get("amount", 0.5), where=where)
    except DOCUMENTED as e:
        assert str(e)
    else:
        _check_mask(g["b"], params["b"])
    jax.tree.map(lambda b, v: np.testing.assert_array_equal(np.asarray(v), b), before, params)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_masks_helpers_and_schedules(data):
    params = {"w": data.draw(arrays(st.sampled_from([(3, 4), (0, 2), (4,)]))), "n": 3}
    mask = data.draw(st.sampled_from(["match", "keepdims", "wrong", "missing", "scalar"]))
    shape = np.shape(params["w"])
    masks = {
        "match": {"w": np.ones(shape, bool), "n": True},
        "keepdims": {"w": np.ones((1,) * (len(shape) - 1) + shape[-1:], bool), "n": True},
        "wrong": {"w": np.ones((5, 5), bool), "n": True},
        "missing": {},
        "scalar": {"w": np.array(False), "n": True},
    }[mask]
    before = _snapshot(params["w"])
    for fn in (jp.apply_masks, jp.sparsity, jp.report):
        try:
            out = fn(params, masks)
        except DOCUMENTED as e:
            assert str(e)
        else:
            if fn is jp.sparsity:
                assert 0.0 <= out <= 1.0
    _unchanged(before, params["w"])
    args = data.draw(
        st.tuples(
            amounts,
            amounts,
            st.integers(-2, 30),
            st.integers(-2, 30),
            st.integers(-1, 5),
            st.sampled_from([3, 1, 0, -1, 2.5]),
        )
    )
    try:
        schedule = jp.polynomial_schedule(*args)
    except DOCUMENTED as e:
        assert str(e)
    else:
        values = np.asarray(jax.vmap(schedule)(jnp.arange(40)))
        assert np.all((values >= 0) & (values <= 1)) and np.all(
            np.diff(values) * np.sign(args[1] - args[0]) >= -1e-7
        )
