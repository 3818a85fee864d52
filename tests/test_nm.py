"""N:M sparsity: exact counts per group, the largest kept, ties, NaN, priors, jit/vmap,
dtypes, errors, random draws, and is_nm on tensors and trees."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp


def ref_nm(scores, alive, n, m, dim):
    """NumPy reference: per group, the n alive entries of largest |score| (NaN largest),
    ties to the higher position."""
    s = np.moveaxis(np.abs(np.asarray(scores, np.float64)), dim, -1)
    a = np.moveaxis(np.broadcast_to(np.asarray(alive), np.shape(scores)), dim, -1)
    s = np.where(np.isnan(s), np.inf, s)
    nan = np.moveaxis(np.isnan(np.asarray(scores, np.float64)), dim, -1)
    out = np.zeros(s.shape, bool)
    for idx in np.ndindex(s.shape[:-1]):
        for g in range(s.shape[-1] // m):
            cols = [g * m + j for j in range(m) if a[idx + (g * m + j,)]]
            # highest (nan, value, position) first
            cols.sort(key=lambda c: (nan[idx + (c,)], s[idx + (c,)], c), reverse=True)
            for c in cols[:n]:
                out[idx + (c,)] = True
    return np.moveaxis(out, -1, dim)


SHAPES = [((8, 6), -2), ((16, 3), 0), ((3, 3, 8, 4), -2), ((6, 12), -1), ((32,), 0)]


@pytest.mark.parametrize("shape, dim", SHAPES)
@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8), (0, 2), (2, 2)])
def test_largest_kept_exactly_n_per_group(shape, dim, n, m):
    if shape[dim] % m:
        pytest.skip("not tiled by m")
    x = jax.random.normal(jax.random.key(sum(shape) + n + m), shape)
    mask = jp.nm_unstructured(x, n, m, dim)
    assert mask.shape == x.shape and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(mask, ref_nm(x, True, n, m, dim))
    groups = np.moveaxis(np.asarray(mask), dim, -1).reshape(-1, m)
    assert (groups.sum(axis=1) == n).all()
    assert jp.is_nm(mask * x, n, m, dim)


def test_default_axis_is_the_input_axis_of_flax_kernels():
    dense = jax.random.normal(jax.random.key(0), (8, 5))  # (in, out)
    conv = jax.random.normal(jax.random.key(1), (3, 3, 8, 5))  # (kh, kw, in, out)
    for w in (dense, conv):
        mask = jp.nm_unstructured(w, 2, 4)
        kept = np.moveaxis(np.asarray(mask), -2, -1).reshape(-1, 4).sum(axis=1)
        assert (kept == 2).all()


def test_ties_keep_the_higher_position_and_nan_is_kept_first():
    x = jnp.ones((4, 1))
    assert jp.nm_unstructured(x, 2, 4).reshape(-1).tolist() == [False, False, True, True]
    y = jnp.array([[jnp.nan], [5.0], [-7.0], [0.0]])
    assert jp.nm_unstructured(y, 2, 4).reshape(-1).tolist() == [True, False, True, False]


def test_a_prior_is_respected_and_groups_keep_at_most_n():
    x = jnp.arange(1.0, 9.0).reshape(8, 1)
    prior = jnp.array([1, 1, 0, 0, 0, 1, 1, 1], bool).reshape(8, 1)
    mask = jp.nm_unstructured(x, 2, 4, default_mask=prior)
    # First group: 2 alive (kept both); second: 3 alive, the 2 largest kept.
    assert mask.reshape(-1).tolist() == [True, True, False, False, False, False, True, True]
    assert not bool((mask & ~prior).any())  # nothing revived
    np.testing.assert_array_equal(mask, ref_nm(x, prior, 2, 4, 0))
    # A second round with a smaller n narrows every group further, never revives.
    again = jp.nm_unstructured(x, 1, 4, default_mask=mask)
    assert again.reshape(-1).tolist() == [False, True] + [False] * 5 + [True]


def test_importance_scores_decide():
    x = jnp.ones((4, 2))
    scores = jnp.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])
    mask = jp.nm_unstructured(x, 1, 4, importance_scores=scores)
    assert mask.astype(int).tolist() == [[0, 1], [0, 0], [0, 0], [1, 0]]


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.int32])
def test_dtypes(dtype):
    x = (jax.random.normal(jax.random.key(2), (8, 4)) * 10).astype(dtype)
    mask = jp.nm_unstructured(x, 2, 4)
    np.testing.assert_array_equal(mask, ref_nm(np.asarray(x, np.float64), True, 2, 4, 0))


def test_jit_and_vmap_give_the_eager_masks():
    x = jax.random.normal(jax.random.key(3), (5, 8, 6))
    eager = jnp.stack([jp.nm_unstructured(x[i], 2, 4) for i in range(5)])
    vm = jax.vmap(lambda w: jp.nm_unstructured(w, 2, 4))(x)
    jitted = jax.jit(lambda w: jp.nm_unstructured(w, 2, 4, -2))(x)
    np.testing.assert_array_equal(vm, eager)
    np.testing.assert_array_equal(jitted, eager)  # groups along axis -2 of the 3-D tensor


def test_large_groups_sort_and_agree_with_the_reference():
    x = jax.random.normal(jax.random.key(4), (64, 3))
    x = x.at[::7].set(0.5)  # ties
    prior = jax.random.bernoulli(jax.random.key(5), 0.8, x.shape)
    for n, m in ((8, 32), (20, 64)):
        mask = jp.nm_unstructured(x, n, m, 0, default_mask=prior)
        np.testing.assert_array_equal(mask, ref_nm(x, prior, n, m, 0))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: jp.nm_unstructured(jnp.ones((6, 2)), 2, 4),
            ValueError,
            "length along dim=-2 is 6",
        ),
        (lambda: jp.nm_unstructured(jnp.ones((8, 2)), 5, 4), ValueError, "n=5"),
        (lambda: jp.nm_unstructured(jnp.ones((8, 2)), 1, 0), ValueError, "m=0"),
        (lambda: jp.nm_unstructured(jnp.ones((8, 2)), True, 4), TypeError, "n must be an int"),
        (lambda: jp.nm_unstructured(jnp.ones((8, 2)), 2, 4.0), TypeError, "m must be an int"),
        (lambda: jp.nm_unstructured(jnp.ones((8, 2)), 2, 4, 2), IndexError, "dim"),
        (lambda: jp.nm_unstructured(jnp.float32(1.0), 1, 1), ValueError, "scalar"),
        (
            lambda: jp.nm_unstructured(jnp.ones((8, 2)), 2, 4, default_mask=jnp.ones(3, bool)),
            ValueError,
            "default_mask",
        ),
        (lambda: jp.random_nm(jax.random.key(0), jnp.ones((6, 2)), 2, 4), ValueError, "m=4"),
    ],
)
def test_bad_input_fails_early_naming_the_parameter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_random_nm_counts_determinism_and_distribution():
    x = jnp.ones((4096, 4))
    a = jp.random_nm(jax.random.key(0), x, 2, 4)
    b = jp.random_nm(jax.random.key(0), x, 2, 4)
    c = jp.random_nm(jax.random.key(1), x, 2, 4)
    np.testing.assert_array_equal(a, b)
    assert not bool((a == c).all())
    groups = np.asarray(a).reshape(1024, 4, 4)  # (groups, position in group, column)
    assert (groups.sum(axis=1) == 2).all()
    # Each position of a group is kept half the time: 4096 draws per position.
    freq = groups.mean(axis=(0, 2))
    assert np.all(np.abs(freq - 0.5) < 0.03), freq
    prior = jax.random.bernoulli(jax.random.key(2), 0.6, x.shape)
    d = jp.random_nm(jax.random.key(3), x, 2, 4, default_mask=prior)
    assert not bool((d & ~prior).any())
    alive = np.asarray(prior).reshape(1024, 4, 4).sum(axis=1)
    kept = np.asarray(d).reshape(1024, 4, 4).sum(axis=1)
    np.testing.assert_array_equal(kept, np.minimum(alive, 2))


def test_is_nm_on_tensors_and_trees():
    w = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    assert jp.is_nm(w, 2, 4) and not jp.is_nm(w, 1, 4)
    assert jp.is_nm(np.asarray(w), 2, 4)
    tree = {"dense": {"kernel": w, "bias": jnp.ones(2)}, "odd": jnp.ones((6, 2)), "step": 3}
    assert jp.is_nm(tree, 2, 4) == {
        "dense": {"kernel": True, "bias": False},
        "odd": False,
        "step": False,
    }
    with pytest.raises(ValueError, match="multiple of m=4"):
        jp.is_nm(jnp.ones((6, 2)), 2, 4)


def _params():
    k = jax.random.split(jax.random.key(7), 3)
    return {
        "Dense_0": {"kernel": jax.random.normal(k[0], (8, 6)), "bias": jnp.ones(6)},
        "Conv_0": {"kernel": jax.random.normal(k[1], (3, 3, 4, 5))},
        "embed": jax.random.normal(k[2], (10, 4)),  # 10 rows: not tiled by 4 along -2
    }


def test_the_pytree_layer_prunes_every_selected_leaf_as_the_core_function():
    params = _params()
    masks = jp.prune(params, "nm_unstructured", n=2, m=4, where="kernel")
    for path in (("Dense_0", "kernel"), ("Conv_0", "kernel")):
        leaf, mask = params[path[0]][path[1]], masks[path[0]][path[1]]
        np.testing.assert_array_equal(mask, jp.nm_unstructured(leaf, 2, 4))
    assert masks["Dense_0"]["bias"].shape == () and bool(masks["Dense_0"]["bias"])
    assert jp.is_nm(jp.apply_masks(params, masks), 2, 4)["Conv_0"]["kernel"]
    # Under jit, the same masks.
    jitted = jax.jit(lambda p: jp.prune(p, "nm_unstructured", n=2, m=4, where="kernel"))(params)
    jax.tree.map(np.testing.assert_array_equal, jitted, masks)
    # A leaf the groups do not tile is refused, naming its path.
    with pytest.raises(ValueError, match="embed.*multiple of m=4"):
        jp.prune(params, "nm_unstructured", n=2, m=4)


def test_the_pytree_layer_respects_priors_scores_and_leaf_keys():
    params = _params()
    where = "kernel"
    first = jp.prune(params, "nm_unstructured", n=2, m=4, where=where)
    key = jax.random.key(3)
    second = jp.prune(params, "random_nm", key=key, n=1, m=4, where=where, masks=first)
    leaf = params["Conv_0"]["kernel"]
    twin = jp.random_nm(
        jp.leaf_key(key, "Conv_0/kernel"), leaf, 1, 4, default_mask=first["Conv_0"]["kernel"]
    )
    np.testing.assert_array_equal(second["Conv_0"]["kernel"], twin)
    assert not bool((second["Conv_0"]["kernel"] & ~first["Conv_0"]["kernel"]).any())
    scores = jax.tree.map(lambda a: -jnp.abs(a) if a.ndim > 1 else a, params)
    by_scores = jp.prune(params, "nm_unstructured", n=2, m=4, where=where, importance_scores=scores)
    np.testing.assert_array_equal(
        by_scores["Dense_0"]["kernel"],
        jp.nm_unstructured(
            params["Dense_0"]["kernel"], 2, 4, importance_scores=scores["Dense_0"]["kernel"]
        ),
    )


def test_where_n_m_are_refused_clearly():
    params = _params()
    with pytest.raises(TypeError, match="needs the keyword argument 'm'"):
        jp.prune(params, "nm_unstructured", n=2, where="kernel")
    with pytest.raises(TypeError, match="unexpected keyword argument 'amount'"):
        jp.prune(params, "nm_unstructured", n=2, m=4, amount=0.5)
    with pytest.raises(TypeError, match="needs key="):
        jp.prune(params, "random_nm", n=2, m=4)
    with pytest.raises(ValueError, match="not a global method.*jp.prune"):
        jp.global_unstructured(params, 0.5, method="nm_unstructured")
    with pytest.raises(TypeError, match="gradual_pruning with nm_unstructured needs .*'m'"):
        jp.gradual_pruning(None, "nm_unstructured", None, n=2)


def test_nnx_models_and_keep_pruned_take_nm_masks():
    import optax
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(8, 8, rngs=rngs)
            self.b = nnx.Linear(8, 4, rngs=rngs)

    model = MLP(nnx.Rngs(0))
    jp.nnx.prune(model, "nm_unstructured", n=2, m=4)
    for layer in (model.a, model.b):
        assert jp.is_nm(layer.kernel[...], 2, 4)
    params = _params()
    masks = jp.prune(params, "nm_unstructured", n=2, m=4, where="kernel")
    params = jp.apply_masks(params, masks)
    tx = jp.keep_pruned(optax.sgd(0.1, momentum=0.9), masks)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert jp.is_nm(params["Conv_0"]["kernel"], 2, 4)


def test_the_cli_prunes_n_of_m_along_the_input_axis_of_the_file_layout(tmp_path, capsys):
    import torch

    from jaxprune import _cli

    rng = np.random.default_rng(0)
    flax_w = rng.standard_normal((8, 6)).astype(np.float32)  # (in, out)
    np.savez(tmp_path / "w.npz", **{"Dense_0/kernel": flax_w, "Dense_0/bias": np.ones(6)})
    torch.save({"fc.weight": torch.from_numpy(flax_w.T.copy())}, tmp_path / "w.pt")
    args = ["--method", "nm_unstructured", "--n", "2", "--m", "4"]
    assert _cli.main(["prune", str(tmp_path / "w.npz"), str(tmp_path / "o.npz"), *args]) == 0
    assert _cli.main(["prune", str(tmp_path / "w.pt"), str(tmp_path / "o.pt"), *args]) == 0
    out = capsys.readouterr().out
    assert "along axis -2, the input axis" in out and "along axis 1, the input axis" in out
    flax_out = np.load(tmp_path / "o.npz")["Dense_0/kernel"]
    torch_out = torch.load(tmp_path / "o.pt")["fc.weight"].numpy()
    np.testing.assert_array_equal(
        flax_out, np.asarray(jp.apply_mask(flax_w, jp.nm_unstructured(flax_w, 2, 4)))
    )
    np.testing.assert_array_equal(torch_out.T, flax_out)  # the twin gets the same mask
    np.testing.assert_array_equal(np.load(tmp_path / "o.npz")["Dense_0/bias"], np.ones(6))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "nm_unstructured", "--n", "2"], "needs --m"),
        (["--method", "nm_unstructured", "--m", "4", "--amount", "0.5"], "no --amount"),
        (["--method", "nm_unstructured", "--m", "4", "--n", "1.5"], "integer number"),
        (["--method", "random_nm", "--m", "3", "--n", "2"], "multiple of m=3"),
        (["--method", "nm_unstructured", "--m", "4"], "needs --n"),
        (["--method", "l1_unstructured"], "needs --amount"),
    ],
)
def test_the_cli_refuses_bad_n_m_in_one_line(tmp_path, capsys, args, message):
    from jaxprune import _cli

    np.savez(tmp_path / "w.npz", w=np.ones((8, 4), np.float32))
    assert _cli.main(["prune", str(tmp_path / "w.npz"), str(tmp_path / "o.npz"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o.npz").exists()
