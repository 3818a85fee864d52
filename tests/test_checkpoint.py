import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

import jaxprune as jp


def _dir_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def test_masks_and_pruned_params_round_trip(tmp_path):
    params = {
        "Dense_0": {
            "kernel": jax.random.normal(jax.random.key(0), (512, 256)),
            "bias": jnp.ones(256),
        },
        "Dense_1": {
            "kernel": jax.random.normal(jax.random.key(1), (256, 10)),
            "bias": jnp.ones(10),
        },
    }
    masks = jp.prune(params, "random_structured", key=jax.random.key(2), amount=0.5)
    masks = jp.prune(params, "l1_unstructured", amount=0.3, masks=masks, where="Dense_1/kernel")
    tree = {"params": jp.apply_masks(params, masks), "masks": masks}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "ckpt", tree)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "ckpt")
    assert jax.tree.structure(restored) == jax.tree.structure(tree)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(tree)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # Boolean keepdims masks stay compact: one byte per channel, not one per weight.
    assert restored["masks"]["Dense_0"]["kernel"].shape == (1, 256)
    params_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    assert _dir_bytes(tmp_path / "ckpt") < params_bytes + 64 * 1024
    assert jp.sparsity(restored["params"]) == jp.sparsity(params, masks)


def test_pruned_nnx_model_round_trip(tmp_path):
    def make():
        return nnx.Sequential(
            nnx.Linear(6, 8, rngs=nnx.Rngs(0)), nnx.Linear(8, 2, rngs=nnx.Rngs(1))
        )

    model = make()
    jp.nnx.prune(model, "random_structured", key=jax.random.key(0), amount=0.5, where="kernel")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "model", nnx.state(model))
    checkpointer.wait_until_finished()

    other = make()
    jp.nnx.prune(other, "random_structured", key=jax.random.key(9), amount=0.5, where="kernel")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, nnx.state(other))
    nnx.update(other, checkpointer.restore(tmp_path / "model", abstract))
    x = jnp.ones((3, 6))
    np.testing.assert_array_equal(other(x), model(x))
    jax.tree.map(
        np.testing.assert_array_equal, nnx.state(other, jp.nnx.Mask), nnx.state(model, jp.nnx.Mask)
    )
