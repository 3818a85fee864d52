import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxprune as jp


def mlp(seed=0):
    return nnx.Sequential(
        nnx.Linear(4, 8, rngs=nnx.Rngs(seed)),
        nnx.relu,
        nnx.Linear(8, 3, rngs=nnx.Rngs(seed + 1)),
    )


X = jnp.linspace(-1, 1, 20).reshape(5, 4)


def test_prune_apply_forward_and_state_filtering():
    model = mlp()
    kernel = model.layers[0].kernel[...]
    jp.nnx.prune(model, "random_structured", key=jax.random.key(0), amount=0.5, where="kernel")
    assert jp.nnx.is_pruned(model)
    masks = nnx.state(model, jp.nnx.Mask)
    assert set(masks["layers"]) == {0, 2}
    mask = masks["layers"][0]["kernel_mask"][...]
    assert mask.shape == (1, 8) and int((~mask).sum()) == 4
    # The original weight is kept, trainable; the forward pass sees the masked weight.
    orig = nnx.state(model, jp.nnx.Pruned)["layers"][0]["kernel"][...]
    np.testing.assert_array_equal(orig, kernel)
    np.testing.assert_array_equal(model.layers[0].kernel[...], jnp.where(mask, kernel, 0))
    ref = mlp()
    with_mask = jnp.maximum(X @ jnp.where(mask, kernel, 0) + ref.layers[0].bias[...], 0)
    m2 = nnx.state(model, jp.nnx.Mask)["layers"][2]["kernel_mask"][...]
    expected = with_mask @ jnp.where(m2, ref.layers[2].kernel[...], 0) + ref.layers[2].bias[...]
    np.testing.assert_allclose(model(X), expected, rtol=1e-6)
    assert issubclass(jp.nnx.Pruned, nnx.Param) and not issubclass(jp.nnx.Mask, nnx.Param)


def test_same_masks_as_the_pytree_layer():
    model = mlp()
    params = nnx.state(model, nnx.Param)
    expected = jp.prune(params, "ln_structured", amount=0.5, n=1, where="kernel")
    jp.nnx.prune(model, "ln_structured", amount=0.5, n=1, where="kernel")
    got = nnx.state(model, jp.nnx.Mask)["layers"][0]["kernel_mask"][...]
    np.testing.assert_array_equal(got, expected["layers"][0]["kernel"][...])


def test_iterative_rounds_score_the_masked_weight():
    model = mlp()
    kernel = model.layers[0].kernel[...]
    jp.nnx.prune(model, "random_structured", key=jax.random.key(0), amount=0.25, where="0/kernel")
    m1 = model.layers[0].kernel_mask[...]
    jp.nnx.prune(model, "l1_unstructured", amount=0.5, where="0/kernel")
    m2 = model.layers[0].kernel_mask[...]
    expected = jp.l1_unstructured(jnp.where(m1, kernel, 0), 0.5, default_mask=m1)
    np.testing.assert_array_equal(m2, expected)
    assert int((~m2).sum()) == 8 + 12 and not bool((m2 & ~m1).any())


def test_remove_makes_pruning_permanent():
    model = mlp()
    jp.nnx.prune(model, "l1_unstructured", amount=0.5, where="kernel")
    pruned_view = model.layers[0].kernel[...]
    jp.nnx.remove(model, where="layers/0")
    assert type(vars(model.layers[0])["kernel"]) is nnx.Param
    assert not hasattr(model.layers[0], "kernel_mask")
    np.testing.assert_array_equal(model.layers[0].kernel[...], pruned_view)
    assert jp.nnx.is_pruned(model)  # layer 2 still is
    jp.nnx.remove(model)
    assert not jp.nnx.is_pruned(model)
    assert type(model.layers[2]) is nnx.Linear
    with pytest.raises(ValueError, match="selects no pruned parameter"):
        jp.nnx.remove(model)


def test_split_merge_jit_and_optimizer():
    model = mlp()
    jp.nnx.prune(model, "random_structured", key=jax.random.key(1), amount=0.5, where="kernel")
    graphdef, state = nnx.split(model)
    clone = nnx.merge(graphdef, state)
    np.testing.assert_array_equal(clone(X), model(X))

    opt = nnx.Optimizer(model, optax.adamw(0.05, weight_decay=0.1), wrt=nnx.Param)
    masks_before = nnx.state(model, jp.nnx.Mask)

    @nnx.jit
    def step(model, opt):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(X) - 1.0) ** 2))(model)
        opt.update(model, grads)
        return loss

    losses = [float(step(model, opt)) for _ in range(30)]
    assert losses[-1] < losses[0]
    mask = model.layers[0].kernel_mask[...]
    assert not bool(jnp.any(jnp.where(mask, 0.0, model.layers[0].kernel[...]) != 0))
    jax.tree.map(np.testing.assert_array_equal, nnx.state(model, jp.nnx.Mask), masks_before)


def test_errors_leave_the_model_unchanged():
    model = mlp()
    before = jax.tree.map(np.asarray, nnx.state(model))
    with pytest.raises(ValueError, match="layers/0/bias: Structured pruning"):
        jp.nnx.prune(
            model, "random_structured", key=jax.random.key(0), amount=0.5, where="layers/0"
        )
    with pytest.raises(ValueError, match="selected no leaf"):
        jp.nnx.prune(model, "l1_unstructured", amount=0.5, where="nothing")
    with pytest.raises(ValueError, match="amount=9 should be smaller"):
        jp.nnx.prune(model, "random_structured", key=jax.random.key(0), amount=9)
    assert not jp.nnx.is_pruned(model)
    jax.tree.map(np.testing.assert_array_equal, nnx.state(model), before)
