import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp


def test_identity_keeps_everything_with_the_tensors_rank():
    m = jp.identity(jnp.ones((2, 3, 4)))
    assert m.shape == (1, 1, 1) and bool(m.all())


def test_custom_from_mask_combines_with_prior():
    x = jnp.ones((2, 3))
    mask = jnp.array([[1, 0, 1], [1, 1, 0]])
    prior = jnp.array([[True, True, False]])
    out = jp.custom_from_mask(x, mask, default_mask=prior)
    assert out.dtype == jnp.bool_
    assert out.tolist() == [[True, False, False], [True, True, False]]


def test_custom_from_mask_keeps_keepdims_shape():
    assert jp.custom_from_mask(jnp.ones((4, 3)), jnp.array([[True, False, True]])).shape == (1, 3)


def test_custom_from_mask_shape_error():
    with pytest.raises(AssertionError, match=r"mask of shape \(2,\) does not broadcast"):
        jp.custom_from_mask(jnp.ones((3, 3)), jnp.ones(2, bool))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.int32])
def test_apply_mask_keeps_dtype_and_writes_exact_zeros(dtype):
    x = jnp.array([[-1.0, 2.0, -3.0]]).astype(dtype)
    out = jp.apply_mask(x, jnp.array([[False, True, False]]))
    assert out.dtype == x.dtype
    assert out.astype(jnp.float32).tolist() == [[0.0, 2.0, 0.0]]
    if jnp.issubdtype(dtype, jnp.floating):
        assert not np.signbit(np.asarray(out.astype(jnp.float32))).any()  # +0.0, not -0.0


def test_apply_mask_zeros_nan_and_broadcasts_keepdims():
    x = jnp.array([[jnp.nan, 1.0], [2.0, jnp.inf]])
    out = jp.apply_mask(x, jnp.array([[False, True]]))
    assert out.tolist() == [[0.0, 1.0], [0.0, float("inf")]]


@pytest.mark.parametrize(
    "dtype", ["float32", "bfloat16", "float16", "int8", "int32", "uint8", "uint32"]
)
def test_apply_mask_is_the_select_bit_for_bit(dtype):
    # Applying is a bitwise AND with all ones or all zeros: the same bits as
    # jnp.where(mask, x, 0) for every value (NaN payloads, -0.0, infinities, int extremes),
    # with full and keepdims masks.
    rng = np.random.default_rng(0)
    info = jnp.finfo if jnp.issubdtype(jnp.dtype(dtype), jnp.floating) else jnp.iinfo
    x = jnp.asarray(rng.standard_normal((6, 8)) * 50).astype(dtype)
    extremes = np.array([info(dtype).max, info(dtype).min, 0, 1]).astype(dtype)
    x = x.at[0, :4].set(jnp.asarray(extremes))
    if jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        x = x.at[1, :4].set(jnp.asarray([jnp.nan, -0.0, jnp.inf, -jnp.inf]).astype(dtype))
    for mask in (rng.random((6, 8)) < 0.5, rng.random((1, 8)) < 0.5, np.array(False)):
        got = jp.apply_mask(x, jnp.asarray(mask))
        want = jnp.where(jnp.asarray(mask), x, jnp.zeros((), x.dtype))
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(
            np.asarray(got).view(np.uint8), np.asarray(want).view(np.uint8)
        )
