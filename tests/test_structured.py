import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from jp_helpers import call, ref_lowest

import jaxprune as jp

CASES = [
    ((6, 5), 0),
    ((6, 5), -1),
    ((4, 3, 5), 1),
    ((4, 3, 5), -3),
    ((3, 2, 4, 5), 0),
    ((3, 2, 4, 5), -1),
    ((8, 2, 3, 3), 1),
]


@pytest.mark.parametrize("shape,dim", CASES)
@pytest.mark.parametrize("amount", [0, 1, 0.0, 0.3, 0.5, 1.0])
def test_random_structured_exact_channel_count_and_keepdims(key, mode, shape, dim, amount):
    x = jnp.ones(shape)
    mask = call(mode, lambda x: jp.random_structured(key, x, amount, dim), x)
    n = shape[dim]
    expected_shape = [1] * len(shape)
    expected_shape[dim] = n
    assert mask.shape == tuple(expected_shape) and mask.dtype == jnp.bool_
    expected = amount if isinstance(amount, int) else round(amount * n)
    assert int((~mask).sum()) == expected


def test_layout_invariance():
    key = jax.random.key(7)
    flax_kernel = jnp.ones((64, 48))  # (in, out)
    torch_weight = jnp.ones((48, 64))  # (out, in)
    conv = jnp.ones((48, 3, 3, 3))
    a = jp.random_structured(key, flax_kernel, 0.3, dim=-1).reshape(-1)
    b = jp.random_structured(key, torch_weight, 0.3, dim=0).reshape(-1)
    c = jp.random_structured(key, conv, 0.3, dim=0).reshape(-1)
    assert (a == b).all() and (a == c).all()
    assert int((~a).sum()) == round(0.3 * 48)


def test_random_structured_key_styles_and_uniformity():
    x = jnp.ones((3, 10))
    assert (
        jp.random_structured(jax.random.PRNGKey(5), x, 3)
        == jp.random_structured(jax.random.key(5), x, 3)
    ).all()
    keys = jax.random.split(jax.random.key(0), 3000)
    masks = jax.vmap(lambda k: jp.random_structured(k, x, 3))(keys)
    assert (np.asarray((~masks).sum(axis=(1, 2))) == 3).all()
    freq = np.asarray((~masks).mean(axis=(0, 1)))
    assert np.abs(freq - 0.3).max() < 0.05


def _np_norm(x, n, dim):
    dim = dim % x.ndim
    axes = tuple(i for i in range(x.ndim) if i != dim)
    a = np.abs(x.astype(np.float64))
    if n in ("fro", 2):
        return np.sqrt((a * a).sum(axis=axes))
    if n == math.inf:
        return a.max(axis=axes)
    if n == -math.inf:
        return a.min(axis=axes)
    if n == 0:
        return (a != 0).sum(axis=axes).astype(np.float64)
    return (a**n).sum(axis=axes) ** (1.0 / n)


@pytest.mark.parametrize("n", [1, 2, 3, 0.5, 0, -1, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("shape,dim", CASES)
def test_ln_matches_numpy_reference(mode, n, shape, dim):
    rng = np.random.default_rng(abs(hash((shape, dim))) % 1000)
    x = rng.standard_normal(shape).astype(np.float32)
    if n == 0:
        x = np.where(rng.random(shape) < 0.4, 0.0, x).astype(np.float32)
    mask = call(mode, lambda x: jp.ln_structured(x, 0.4, n, dim), jnp.asarray(x))
    units = shape[dim]
    k = round(0.4 * units)
    norms = _np_norm(x, n, dim)
    pruned = ref_lowest(norms, np.ones(units, bool), k)
    expected_shape = [1] * len(shape)
    expected_shape[dim] = units
    np.testing.assert_array_equal(np.asarray(mask), ~pruned.reshape(expected_shape))


def test_ln_ties_prune_lower_channel_first():
    x = jnp.array([[1.0, 2.0, 1.0, 0.0], [1.0, 2.0, 1.0, 0.0]])
    assert jp.ln_structured(x, 2, 1, dim=1).tolist() == [[False, True, True, False]]


def _torch_module(w):
    m = torch.nn.Module()
    m.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    return m


ROUNDS = [
    [("ln", 0.3, 2, 0)],
    [("l1", 0.4), ("ln", 0.5, 1, -1)],  # structured after unstructured
    [("ln", 2, math.inf, 1), ("l1", 0.3)],
    [("l1", 0.9), ("ln", 0.5, 2, 0), ("ln", 1, math.inf, 1), ("l1", 3)],
    [("ln", 0.5, "fro", 0), ("ln", 0.5, 3, 0), ("ln", 0.4, 0.5, 1)],
]


@pytest.mark.parametrize("rounds", ROUNDS)
@pytest.mark.parametrize("shape", [(10, 8), (6, 5, 4)])
def test_rounds_equal_torch_exactly(rounds, shape):
    rng = np.random.default_rng(len(rounds))
    w = rng.standard_normal(shape).astype(np.float32)
    if len(shape) == 3:
        rounds = [r for r in rounds if not (r[0] == "ln" and r[2] == "fro")]
    module = _torch_module(w)
    mask = None
    for r in rounds:
        # torch scores a pruned parameter by its current (masked) value, module.weight.
        scores = jnp.asarray(w) if mask is None else jp.apply_mask(jnp.asarray(w), mask)
        if r[0] == "l1":
            tprune.l1_unstructured(module, "weight", amount=r[1])
            mask = jp.l1_unstructured(scores, r[1], default_mask=mask)
        else:
            _, amount, n, dim = r
            tprune.ln_structured(module, "weight", amount=amount, n=n, dim=dim)
            mask = jp.ln_structured(scores, amount, n, dim, default_mask=mask)
        expected = module.weight_mask.numpy() == 1
        np.testing.assert_array_equal(np.broadcast_to(np.asarray(mask), shape), expected)


def test_dead_channels_after_unstructured_are_not_counted():
    # Channel 1 loses every entry to an unstructured prior: it is dead, not a unit.
    x = jnp.ones((3, 4))
    prior = jnp.ones((3, 4), bool).at[:, 1].set(False).at[0, 2].set(False)
    m = jp.random_structured(jax.random.key(0), x, 0.5, dim=1, default_mask=prior)
    assert m.shape == (3, 4)
    alive_after = np.asarray(m.any(axis=0))
    # Channels {0, 2, 3} are alive: round(0.5 * 3) == 2 of them go, one remains.
    assert alive_after.sum() == 1 and not alive_after[1]
    assert not (m & ~prior).any()


def test_structured_prior_keeps_keepdims_shape():
    x = jnp.ones((5, 8))
    m1 = jp.random_structured(jax.random.key(0), x, 0.25)
    m2 = jp.random_structured(jax.random.key(1), x, 0.5, default_mask=m1)
    assert m1.shape == m2.shape == (1, 8)
    assert int((~m2).sum()) == 2 + 3 and not (m2 & ~m1).any()
    full = jnp.broadcast_to(m1, x.shape)
    m3 = jp.random_structured(jax.random.key(1), x, 0.5, default_mask=full)
    np.testing.assert_array_equal(np.broadcast_to(m2, x.shape), m3)


def test_traced_amount_and_prior_under_jit():
    x = jnp.ones((4, 10))
    traces = []

    @jax.jit
    def f(amount, prior):
        traces.append(1)
        return jp.random_structured(jax.random.key(0), x, amount, default_mask=prior)

    prior = jnp.ones((1, 10), bool).at[0, :4].set(False)
    for a, pruned in [(0.5, 4 + 3), (0.25, 4 + 2), (1.0, 10)]:  # 6 alive: round(1.5)=2
        assert int((~f(jnp.float32(a), prior)).sum()) == pruned
    assert len(traces) == 1


def test_python_float_with_traced_prior_is_exact():
    x = jnp.ones((2, 5))
    prior = jnp.ones((1, 5), bool)
    # 0.1 * 5 == 0.5 in double precision: Python rounds it to 0.
    m = jax.jit(lambda p: jp.random_structured(jax.random.key(0), x, 0.1, default_mask=p))(prior)
    assert int((~m).sum()) == 0


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_ln_dtypes(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 20)).astype(np.float32)
    xd = jnp.asarray(x).astype(dtype)
    norms = _np_norm(np.asarray(xd.astype(jnp.float32)), 2, 1)
    m = jp.ln_structured(xd, 5, 2, dim=1)
    np.testing.assert_array_equal(np.asarray(m)[0], ~ref_lowest(norms, np.ones(20, bool), 5))


def test_errors():
    x = jnp.ones((3, 4))
    k = jax.random.key(0)
    with pytest.raises(
        ValueError, match=re.escape("multidimensional tensors. Found x of shape (4,) with 1 dims")
    ):
        jp.random_structured(k, jnp.ones(4), 1)
    with pytest.raises(IndexError, match=re.escape("Invalid index dim=2 for tensor of size")):
        jp.random_structured(k, x, 1, dim=2)
    with pytest.raises(IndexError, match="dim=-3"):
        jp.ln_structured(x, 1, 2, dim=-3)
    with pytest.raises(TypeError, match="dim must be an int"):
        jp.ln_structured(x, 1, 2, dim=1.0)
    with pytest.raises(ValueError, match="amount=5 should be smaller"):
        jp.random_structured(k, x, 5)
    with pytest.raises(ValueError, match=re.escape("n='nuc' is not a supported norm")):
        jp.ln_structured(x, 1, "nuc")
    with pytest.raises(TypeError, match="n must be a number"):
        jp.ln_structured(x, 1, None)
    with pytest.raises(AssertionError, match="importance_scores should have the same shape"):
        jp.ln_structured(x, 1, 2, importance_scores=jnp.ones(4))
    prior = jnp.ones((3, 4), bool).at[:, :2].set(False)
    with pytest.raises(ValueError, match="parameters to prune=2"):
        jp.random_structured(k, x, 3, dim=1, default_mask=prior)
