"""Properties over random shapes, dims, amounts and priors (hypothesis)."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxprune as jp

# Shapes from a small pool (ranks 2 to 4, size-1 axes, up to 6 along an axis), so that
# examples hit the compile cache; amounts, dims, priors and values vary freely.
shapes = st.sampled_from(
    [(1, 5), (6, 1), (3, 4), (6, 6), (2, 3, 4), (5, 2, 3), (1, 1, 6), (2, 2, 2, 3), (4, 1, 2, 5)]
)


@st.composite
def cases(draw):
    shape = draw(shapes)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    frac = draw(st.floats(0.0, 1.0))
    prior_p = draw(st.sampled_from([None, 0.3, 0.7]))
    seed = draw(st.integers(0, 2**16))
    return shape, dim, frac, prior_p, seed


@settings(max_examples=60, deadline=None)
@given(cases())
def test_structured_counts_among_unpruned_channels(case):
    shape, dim, frac, prior_p, seed = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    prior = None if prior_p is None else jnp.asarray(rng.random(shape) > prior_p)
    axes = tuple(i for i in range(len(shape)) if i != dim % len(shape))
    alive = shape[dim] if prior is None else int(np.asarray(prior).any(axis=axes).sum())
    k = round(frac * alive)
    for mask in (
        jp.random_structured(jax.random.key(seed), x, frac, dim, default_mask=prior),
        jp.ln_structured(x, frac, 2, dim, default_mask=prior),
    ):
        full = np.broadcast_to(np.asarray(mask), shape)
        alive_after = int(full.any(axis=axes).sum())
        assert alive_after == alive - k
        if prior is not None:
            assert not (full & ~np.asarray(prior)).any()  # nothing revived


@settings(max_examples=60, deadline=None)
@given(cases())
def test_unstructured_counts_among_unpruned_entries(case):
    shape, _, frac, prior_p, seed = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    prior = None if prior_p is None else jnp.asarray(rng.random(shape) > prior_p)
    alive = int(np.prod(shape)) if prior is None else int(np.asarray(prior).sum())
    k = round(frac * alive)
    for mask in (
        jp.random_unstructured(jax.random.key(seed), x, frac, default_mask=prior),
        jp.l1_unstructured(x, frac, default_mask=prior),
    ):
        assert int(np.asarray(mask).sum()) == alive - k
        if prior is not None:
            assert not (np.asarray(mask) & ~np.asarray(prior)).any()


@settings(max_examples=40, deadline=None)
@given(cases())
def test_jit_equals_eager(case):
    shape, dim, frac, prior_p, seed = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    prior = jnp.ones(shape, bool) if prior_p is None else jnp.asarray(rng.random(shape) > prior_p)
    key = jax.random.key(seed)
    eager = jp.random_structured(key, x, frac, dim, default_mask=prior)
    traced = jax.jit(lambda x, p: jp.random_structured(key, x, frac, dim, default_mask=p))(x, prior)
    np.testing.assert_array_equal(eager, traced)
    eager = jp.l1_unstructured(x, frac, default_mask=prior)
    traced = jax.jit(lambda x, p: jp.l1_unstructured(x, frac, default_mask=p))(x, prior)
    np.testing.assert_array_equal(eager, traced)
