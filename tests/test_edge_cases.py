"""Empty tensors, zero-size axes, single channels, integer weights, very large shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp

KEY = jax.random.key(0)


def test_empty_tensors_and_zero_size_axes():
    assert jp.l1_unstructured(jnp.ones((0, 3)), 0.5).shape == (0, 3)
    with pytest.raises(ValueError, match="amount=1 should be smaller"):
        jp.l1_unstructured(jnp.ones((0, 3)), 1)
    # Three channels without entries are still three channels, as in torch.
    m = jp.random_structured(KEY, jnp.ones((0, 3)), 0.5, dim=-1)
    assert m.shape == (1, 3) and int((~m).sum()) == 2
    assert jp.random_structured(KEY, jnp.ones((3, 0)), 0.5, dim=-1).shape == (1, 0)
    for n in (2, jnp.inf, -jnp.inf, 0):
        assert int((~jp.ln_structured(jnp.ones((0, 3)), 1, n, dim=-1)).sum()) == 1


def test_single_channel_and_full_amounts():
    assert jp.random_structured(KEY, jnp.ones((1, 3)), 1, dim=0).tolist() == [[False]]
    assert jp.random_structured(KEY, jnp.ones((1, 3)), 0.5, dim=0).tolist() == [[True]]  # 0.5->0
    x = jnp.arange(12.0).reshape(3, 4)
    assert not bool(jp.l1_unstructured(x, 12).any()) and not bool(jp.l1_unstructured(x, 1.0).any())
    assert bool(jp.l1_unstructured(x, 0).all()) and bool(jp.l1_unstructured(x, 0.0).all())


def test_integer_weights():
    x = jnp.array([[3, -128], [0, 2]], jnp.int8)  # |-128| is 128, not an overflow
    assert jp.l1_unstructured(x, 2).tolist() == [[True, True], [False, False]]
    u = jnp.array([[3, 255], [0, 2]], jnp.uint8)
    assert jp.l1_unstructured(u, 2).tolist() == [[True, True], [False, False]]
    assert jp.ln_structured(jnp.array([[3, -1], [0, 2]]), 1, 1, dim=0).tolist() == [[True], [False]]
    out = jp.apply_mask(jnp.array([5, -7], jnp.int32), jnp.array([False, True]))
    assert out.dtype == jnp.int32 and out.tolist() == [0, -7]


def test_scalar_tensor():
    assert jp.l1_unstructured(jnp.ones(()), 1).tolist() is False
    with pytest.raises(ValueError, match="Structured pruning"):
        jp.random_structured(KEY, jnp.ones(()), 1)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: jp.l1_unstructured(x, 0.5),
        lambda x: jp.random_unstructured(KEY, x, 0.5),
        lambda x: jp.random_structured(KEY, x, 0.5, dim=0),
        lambda x: jp.ln_structured(x, 0.5, 2, dim=-1),
        lambda x: jp.prune({"w": x}, "l1_unstructured", amount=0.5)["w"],
        lambda x: jp.global_unstructured({"a": x, "b": x[:, :2]}, 0.5)["a"],
    ],
)
def test_shapes_past_int32_indices(fn):
    # 2**16 * (2**15 + 1) > 2**31 entries: positions and counts are unsigned 32-bit, so the
    # index arithmetic holds up to 2**32 entries per selection; checked abstractly.
    big = jax.ShapeDtypeStruct((2**16, 2**15 + 1), jnp.float32)
    out = jax.eval_shape(fn, big)
    assert out.dtype == jnp.bool_ and out.shape in ((2**16, 2**15 + 1), (2**16, 1), (1, 2**15 + 1))


def test_odd_paths():
    params = {"a/b": {"0": jnp.ones((2, 4))}, "ü ñ.*": jnp.ones((3, 3))}
    paths = [r.path for r in jp.report(params)]
    assert "a/b/0" in paths and "ü ñ.*" in paths
    m = jp.prune(params, "l1_unstructured", amount=1, where=r"ü ñ\.\*")
    assert m["ü ñ.*"].shape == (3, 3) and m["a/b"]["0"].shape == ()
    again = jp.prune(params, "random_structured", key=KEY, amount=0.5)
    np.testing.assert_array_equal(
        again["a/b"]["0"], jp.random_structured(jp.leaf_key(KEY, "a/b/0"), jnp.ones((2, 4)), 0.5)
    )


def test_global_selection_past_2_to_32_units_needs_x64():
    big = jax.ShapeDtypeStruct((2**16, 2**15 + 1), jnp.float32)
    with pytest.raises(ValueError, match="needs 64-bit counters"):
        jax.eval_shape(lambda x: jp.global_unstructured({"a": x, "b": x}, 0.5), big)
    jax.config.update("jax_enable_x64", True)
    try:
        out = jax.eval_shape(lambda x: jp.global_unstructured({"a": x, "b": x}, 0.5), big)
        assert out["b"].shape == big.shape
    finally:
        jax.config.update("jax_enable_x64", False)


def test_masks_of_the_wrong_dtype_or_shape():
    x = jnp.ones((2, 3))
    with pytest.raises(TypeError, match="masks are boolean or real"):
        jp.l1_unstructured(x, 1, default_mask=jnp.ones((2, 3), jnp.complex64))
    with pytest.raises(TypeError, match="default_mask must be an array"):
        jp.l1_unstructured(x, 1, default_mask="all")
    with pytest.raises(jp.ShapeMismatchError):
        jp.random_structured(KEY, x, 1, default_mask=jnp.ones((3, 2), bool))
    # A numeric prior counts nonzero entries as kept.
    m = jp.l1_unstructured(x, 1, default_mask=jnp.array([[1.0, 0.0, 2.0], [1, 1, 1]]))
    assert int((~m).sum()) == 2 and not bool(m[0, 1])


def test_same_masks_in_repeated_processes():
    import subprocess
    import sys

    code = (
        "import jax, jax.numpy as jnp, hashlib, numpy as np, jaxprune as jp\n"
        "p = {'a': {'kernel': jnp.ones((64, 32))}, 'b': jnp.arange(600.0).reshape(20, 30)}\n"
        "m = [jp.prune(p, 'random_structured', key=jax.random.key(5), amount=0.3),\n"
        "     jp.prune(p, 'random_unstructured', key=jax.random.key(6), amount=0.4),\n"
        "     jp.global_unstructured(p, 0.5, method='random', key=jax.random.key(7))]\n"
        "print(hashlib.sha256(b''.join(np.asarray(x).tobytes() for x in jax.tree.leaves(m)))"
        ".hexdigest())\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    namespace: dict = {}
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(code, namespace)
    assert runs[0] == runs[1] == out.getvalue().strip()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: jp.l1_unstructured(x, 0.5),
        lambda x: jp.l1_unstructured(x, 2**31 + 1),
        lambda x: jp.random_unstructured(jax.random.key(0), x, 0.5),
        lambda x: jp.random_structured(jax.random.key(0), x, 0.5),
        lambda x: jp.prune({"w": x}, "l1_unstructured", amount=0.5)["w"],
        lambda x: jp.global_unstructured({"w": x}, 0.5)["w"],
    ],
)
def test_more_than_2_31_units_trace_without_overflow(call):
    # Counts, sizes and positions past 2**31 stay unsigned 32-bit (no Python int reaches a
    # jitted op as a signed 32-bit scalar); eval_shape traces without allocating.
    x = jax.ShapeDtypeStruct((1, 2**31 + 5), jnp.float32)
    assert jax.eval_shape(call, x).shape[1] == 2**31 + 5
