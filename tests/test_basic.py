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
