import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from jp_helpers import call, ref_lowest

import jaxprune as jp

SHAPES = [(7,), (5, 6), (3, 4, 5), (2, 3, 4, 5), (200, 100)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("amount", [0, 1, 0.0, 0.3, 0.5, 1.0])
def test_random_unstructured_prunes_exact_count(key, mode, shape, amount):
    x = jnp.ones(shape)
    mask = call(mode, lambda x: jp.random_unstructured(key, x, amount), x)
    size = int(np.prod(shape))
    expected = amount if isinstance(amount, int) else round(amount * size)
    assert mask.shape == shape and mask.dtype == jnp.bool_
    assert int((~mask).sum()) == expected


def test_random_unstructured_determinism_and_key_styles():
    x = jnp.ones((30, 40))
    a = jp.random_unstructured(jax.random.key(3), x, 0.4)
    b = jp.random_unstructured(jax.random.key(3), x, 0.4)
    c = jp.random_unstructured(jax.random.PRNGKey(3), x, 0.4)
    d = jp.random_unstructured(jax.random.key(4), x, 0.4)
    assert (a == b).all() and (a == c).all()
    assert not (a == d).all()


def test_random_unstructured_is_uniform_over_entries():
    x = jnp.ones((10, 10))
    keys = jax.random.split(jax.random.key(0), 2000)
    masks = jax.vmap(lambda k: jp.random_unstructured(k, x, 0.3))(keys)
    freq = np.asarray((~masks).mean(axis=0))
    assert (np.asarray((~masks).sum(axis=(1, 2))) == 30).all()
    # Each entry is pruned with probability 0.3: 2000 draws give a std of about 0.01.
    assert np.abs(freq - 0.3).max() < 0.06


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("amount", [0, 2, 0.25, 0.5, 1.0])
def test_l1_matches_numpy_reference(mode, shape, amount):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    mask = call(mode, lambda x: jp.l1_unstructured(x, amount), jnp.asarray(x))
    k = amount if isinstance(amount, int) else round(amount * x.size)
    expected = ~ref_lowest(np.abs(x), np.ones(shape, bool), k).reshape(shape)
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_l1_tie_rule_lower_position_pruned_first():
    x = jnp.array([2.0, 1.0, -1.0, 1.0, 0.0, 3.0])
    assert jp.l1_unstructured(x, 3).tolist() == [True, False, False, True, False, True]


def test_l1_nan_is_pruned_last():
    x = jnp.array([jnp.nan, 1.0, jnp.inf, -2.0])
    assert jp.l1_unstructured(x, 3).tolist() == [True, False, False, False]


def test_l1_importance_scores_replace_x():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    s = jnp.array([4.0, 3.0, 2.0, 1.0])
    assert jp.l1_unstructured(x, 2, importance_scores=s).tolist() == [True, True, False, False]


def test_l1_integer_weights_like_torch():
    # torch's own tests prune an int64 tensor with ties.
    x = jnp.array([[1, -2, 3], [-1, 0, 2]], jnp.int32)
    assert int((~jp.l1_unstructured(x, 0.5)).sum()) == 3
    assert jp.l1_unstructured(x, 2).tolist() == [[False, True, True], [True, False, True]]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_l1_dtypes(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 16)).astype(np.float32)
    xd = jnp.asarray(x).astype(dtype)
    mags = np.abs(np.asarray(xd.astype(jnp.float32)))
    mask = jp.l1_unstructured(xd, 0.4)
    k = round(0.4 * 256)
    expected = ~ref_lowest(mags, np.ones(mags.shape, bool), k).reshape(16, 16)
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_float64_with_x64():
    jax.config.update("jax_enable_x64", True)
    try:
        x = jnp.asarray(np.array([1.0, 1.0 + 1e-12, 1.0 - 1e-12, 5.0]), jnp.float64)
        assert x.dtype == jnp.float64
        assert jp.l1_unstructured(x, 2).tolist() == [False, True, False, True]
    finally:
        jax.config.update("jax_enable_x64", False)


def test_prior_mask_entries_are_not_counted_or_revived():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((20, 10)).astype(np.float32))
    m1 = jp.random_unstructured(jax.random.key(0), x, 0.5)
    m2 = jp.l1_unstructured(x, 0.5, default_mask=m1)
    assert int((~m2).sum()) == 100 + 50
    assert not (m2 & ~m1).any()  # nothing revived
    m3 = jp.random_unstructured(jax.random.key(1), x, 10, default_mask=m2)
    assert int((~m3).sum()) == 160 and not (m3 & ~m2).any()


def test_keepdims_prior_counts_entries():
    x = jnp.ones((4, 6))
    prior = jnp.array([[True, False, True, True, True, True]])
    m = jp.random_unstructured(jax.random.key(0), x, 0.5, default_mask=prior)
    assert m.shape == (4, 6)
    assert int((~m).sum()) == 4 + 10 and not m[:, 1].any()


@pytest.mark.parametrize("rounds", [1, 2, 3, 4])
def test_l1_rounds_equal_torch_exactly(rounds):
    rng = np.random.default_rng(rounds)
    w = rng.standard_normal((12, 9)).astype(np.float32)
    module = torch.nn.Linear(9, 12)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w))
    mask = None
    for r in range(rounds):
        amount = [0.3, 7, 0.5, 0.25][r]
        tprune.l1_unstructured(module, "weight", amount=amount)
        mask = jp.l1_unstructured(jnp.asarray(w), amount, default_mask=mask)
        np.testing.assert_array_equal(np.asarray(mask), module.weight_mask.numpy() == 1)


def test_no_recompilation_across_traced_amounts(key):
    traces = []
    x = jnp.ones((64, 32))

    @jax.jit
    def f(amount):
        traces.append(1)
        return jp.random_unstructured(key, x, amount), jp.l1_unstructured(x, amount)

    counts = [int((~f(jnp.float32(a))[0]).sum()) for a in (0.1, 0.25, 0.5, 0.9)]
    assert counts == [205, 512, 1024, 1843]  # round half to even in float32
    assert len(traces) == 1


def test_eager_python_amounts_reuse_one_compiled_program():
    from jaxprune import _methods

    x = jnp.asarray(np.random.default_rng(0).standard_normal((33, 17)), jnp.float32)
    jp.l1_unstructured(x, 0.1)
    before = _methods.compute_jit._cache_size()
    for a in (0.2, 0.3, 5, 0.75):
        jp.l1_unstructured(x, a)
    assert _methods.compute_jit._cache_size() == before


def test_vmap_over_64_keys():
    x = jnp.ones((8, 8))
    keys = jax.random.split(jax.random.key(0), 64)
    masks = jax.vmap(lambda k: jp.random_unstructured(k, x, 0.25))(keys)
    assert masks.shape == (64, 8, 8)
    assert (np.asarray((~masks).sum(axis=(1, 2))) == 16).all()
    assert len({np.asarray(m).tobytes() for m in masks}) == 64
    for i in (0, 17, 63):
        np.testing.assert_array_equal(masks[i], jp.random_unstructured(keys[i], x, 0.25))


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"amount": "a"}, TypeError, "Invalid type for amount: 'a'"),
        ({"amount": -2}, ValueError, "amount=-2 should either be"),
        ({"amount": 1.5}, ValueError, "amount=1.5 should either be"),
        ({"amount": 13}, ValueError, "amount=13 should be smaller than the number"),
    ],
)
def test_errors(kwargs, exc, msg):
    x = jnp.ones((3, 4))
    with pytest.raises(exc, match=re.escape(msg)):
        jp.l1_unstructured(x, **kwargs)
    with pytest.raises(exc, match=re.escape(msg)):
        jp.random_unstructured(jax.random.key(0), x, **kwargs)


def test_int_amount_checked_against_unpruned_entries():
    x = jnp.ones((2, 3))
    prior = jnp.array([[True, False, False], [True, True, False]])
    with pytest.raises(
        ValueError, match="amount=4 should be smaller than the number of parameters to prune=3"
    ):
        jp.l1_unstructured(x, 4, default_mask=prior)


def test_bad_shapes_and_dtypes():
    x = jnp.ones((3, 4))
    with pytest.raises(AssertionError, match=re.escape("importance_scores should have the same")):
        jp.l1_unstructured(x, 1, importance_scores=jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="default_mask of shape"):
        jp.l1_unstructured(x, 1, default_mask=jnp.ones((2, 4), bool))
    with pytest.raises(TypeError, match="dtype bool"):
        jp.l1_unstructured(jnp.ones(3, bool), 1)
    with pytest.raises(TypeError, match="complex"):
        jp.l1_unstructured(jnp.ones(3, jnp.complex64), 1)
    with pytest.raises(TypeError, match="Integer seeds are not accepted"):
        jp.random_unstructured(0, x, 1)
    with pytest.raises(TypeError, match="batch of shape"):
        jp.random_unstructured(jax.random.split(jax.random.key(0), 2), x, 1)


def test_inputs_are_not_mutated():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    prior = np.ones((3, 4), bool)
    copy_x, copy_p = x.copy(), prior.copy()
    jp.l1_unstructured(x, 0.5, default_mask=prior)
    assert (x == copy_x).all() and (prior == copy_p).all()
