"""With key=, torch_compat's masks equal jaxprune's for the same key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxprune as jp
from torch_compat import prune as cp


def test_linear_and_flax_dense_lose_the_same_output_channels():
    key = jax.random.key(11)
    m = torch.nn.Linear(12, 10)  # weight (out=10, in=12)
    cp.random_structured(m, "weight", amount=0.3, dim=0, key=key)
    kernel = jnp.ones((12, 10))  # Flax Dense kernel (in, out)
    flax_mask = jp.random_structured(key, kernel, 0.3, dim=-1)
    torch_channels = (m.weight_mask.sum(dim=1) > 0).numpy()
    np.testing.assert_array_equal(torch_channels, np.asarray(flax_mask).reshape(-1))


def test_conv_and_prior_masks_equal_jaxprune():
    key = jax.random.key(2)
    m = torch.nn.Conv2d(3, 8, 3)
    cp.l1_unstructured(m, "weight", amount=0.4)
    prior = jnp.asarray(m.weight_mask.numpy() != 0)
    cp.random_structured(m, "weight", amount=0.5, dim=0, key=key)
    want = jp.random_structured(
        key, jnp.asarray(m.weight_orig.detach().numpy()), 0.5, dim=0, default_mask=prior
    )
    np.testing.assert_array_equal(m.weight_mask.numpy() != 0, np.broadcast_to(want, m.weight.shape))


@pytest.mark.parametrize("legacy", [False, True])
def test_random_unstructured_key(legacy):
    key = jax.random.PRNGKey(5) if legacy else jax.random.key(5)
    m = torch.nn.Linear(6, 4)
    cp.random_unstructured(m, "weight", amount=0.5, key=key)
    want = jp.random_unstructured(jax.random.key(5), jnp.ones((4, 6)), 0.5)
    np.testing.assert_array_equal(m.weight_mask.numpy() != 0, np.asarray(want))
    prior = jnp.asarray(m.weight_mask.numpy() != 0)
    cp.random_unstructured(m, "weight", amount=3, key=jax.random.key(6))
    want = jp.random_unstructured(jax.random.key(6), jnp.ones((4, 6)), 3, default_mask=prior)
    np.testing.assert_array_equal(m.weight_mask.numpy() != 0, np.asarray(want))


def test_key_does_not_touch_torchs_generator():
    torch.manual_seed(0)
    cp.random_structured(torch.nn.Linear(4, 4), "weight", amount=1, dim=0, key=jax.random.key(0))
    after = torch.rand(1)
    torch.manual_seed(0)
    torch.nn.Linear(4, 4)
    assert torch.equal(torch.rand(1), after)


def test_bad_key_is_a_type_error():
    with pytest.raises(TypeError, match="Integer seeds are not accepted"):
        cp.random_structured(torch.nn.Linear(4, 4), "weight", amount=1, dim=0, key=3)
