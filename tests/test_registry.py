"""The method registry and a user's own method (jp.register_method) through every layer."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxprune as jp
from jaxprune import _cli, _io, _methods, _registry, _tree

KEY = jax.random.key(0)


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Each test registers into a copy of the registry, so names can repeat across tests."""
    monkeypatch.setattr(_registry, "_METHODS", dict(_registry._METHODS))


def row_weighted(x):
    """|w| scaled by the L2 norm of its row (the issue's example)."""
    return jnp.abs(x) * jnp.linalg.norm(x, axis=-1, keepdims=True)


def np_row_weighted(x):
    x = np.asarray(x, np.float64)
    return np.abs(x) * np.linalg.norm(x, axis=-1, keepdims=True)


def lowest(scores, k, alive=None):
    """The reference rule: the k alive units of lowest score, ties to the lower index."""
    flat = np.asarray(scores, np.float64).reshape(-1)
    alive = np.ones(flat.shape, bool) if alive is None else np.asarray(alive).reshape(-1)
    order = sorted(np.flatnonzero(alive), key=lambda i: (flat[i], i))
    pruned = np.zeros(flat.shape, bool)
    pruned[order[:k]] = True
    return pruned.reshape(np.shape(scores))


def builtin_names(**kw):
    # Doctests and the README register methods of their own in the same process.
    return [n for n in _registry.names(**kw) if _registry.get(n).builtin]


def test_builtins_are_one_definition_each():
    assert builtin_names(selects=True) == [
        "l1_unstructured",
        "ln_structured",
        "random_structured",
        "random_unstructured",
    ]
    assert builtin_names(selects=False) == ["custom_from_mask", "identity"]
    for name in builtin_names():
        method = _registry.get(name)
        assert getattr(jp, name) is method.function
        assert _registry.get(method.function) is method
    assert _registry.get("ln_structured").keywords() == (
        ("amount", "n"),
        ("dim", "importance_scores"),
    )
    assert _registry.for_global("l1") is _registry.get("l1_unstructured")
    assert _registry.for_global("random_unstructured") is _registry.get("random_unstructured")


@pytest.mark.parametrize("jit", [False, True])
def test_user_method_prunes_the_lowest_scores_exactly(jit):
    f = jp.register_method("row_weighted", row_weighted)
    x = jax.random.normal(jax.random.key(1), (12, 20))
    call = jax.jit(f, static_argnums=1) if jit else f
    for amount, k in ((0.3, 72), (50, 50), (0.0, 0), (1.0, 240)):
        mask = np.asarray(call(x, amount))
        assert mask.shape == x.shape and mask.dtype == bool
        np.testing.assert_array_equal(~mask, lowest(np_row_weighted(x), k))


def test_user_method_scores_are_ordered_by_value_with_ties_low_first_and_nan_last():
    f = jp.register_method("identity_scores", lambda x: x)
    x = jnp.array([3.0, -5.0, 0.0, -0.0, jnp.nan, -jnp.inf, 2.0, 2.0])
    # By value, not magnitude: -inf, -5, then 0.0 and -0.0 tie (the lower index first).
    assert (~f(x, 3)).tolist() == [False, True, True, False, False, True, False, False]
    assert (~f(x, 6)).tolist() == [False, True, True, True, False, True, True, True]
    assert (~f(x, 7)).tolist() == [True, True, True, True, False, True, True, True]
    ints = jp.register_method("int_scores", lambda x: (x * 10).astype(jnp.int32))
    assert (~ints(jnp.array([0.3, -0.2, 0.1]), 1)).tolist() == [False, True, False]


def test_user_method_counts_among_unpruned_units_and_never_revives():
    f = jp.register_method("row_weighted", row_weighted)
    x = jax.random.normal(jax.random.key(2), (10, 10))
    prior = jax.random.bernoulli(jax.random.key(3), 0.6, x.shape)
    alive = int(prior.sum())
    mask = np.asarray(f(x, 0.5, default_mask=prior))
    assert not (mask & ~np.asarray(prior)).any()
    assert int((np.asarray(prior) & ~mask).sum()) == round(0.5 * alive)
    np.testing.assert_array_equal(
        np.asarray(prior) & ~mask, lowest(np_row_weighted(x), round(0.5 * alive), prior)
    )
    with pytest.raises(ValueError, match=re.escape(f"prune={alive} (unpruned entries")):
        f(x, alive + 1, default_mask=prior)


def test_importance_scores_replace_x_and_vmap_works():
    f = jp.register_method("row_weighted", row_weighted)
    x = jax.random.normal(jax.random.key(4), (6, 8))
    s = jax.random.normal(jax.random.key(5), (6, 8))
    np.testing.assert_array_equal(
        ~np.asarray(f(x, 10, importance_scores=s)), lowest(np_row_weighted(s), 10)
    )
    xs = jax.random.normal(jax.random.key(6), (3, 6, 8))
    batched = jax.vmap(lambda w: f(w, 0.25))(xs)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(batched[i]), np.asarray(f(xs[i], 0.25)))


def test_structured_user_method_scores_channels_and_twins_match():
    def max_abs(x, dim):
        return jnp.max(jnp.abs(jnp.moveaxis(x, dim, 0)).reshape(x.shape[dim], -1), axis=1)

    g = jp.register_method("max_abs", max_abs, structured=True)
    w = jax.random.normal(jax.random.key(7), (16, 12))
    mask = g(w, 0.25)
    assert mask.shape == (1, 12) and int((~mask).sum()) == 3
    want = lowest(np.abs(np.asarray(w)).max(axis=0), 3)
    np.testing.assert_array_equal(~np.asarray(mask).reshape(-1), want)
    # The torch layout (out, in) pruned on dim=0 loses the same channels.
    twin = g(w.T, 0.25, dim=0)
    np.testing.assert_array_equal(np.asarray(twin).reshape(-1), np.asarray(mask).reshape(-1))
    with pytest.raises(ValueError, match="Structured pruning"):
        g(jnp.ones(5), 1)
    with pytest.raises(IndexError, match="dim=2"):
        g(w, 1, dim=2)


def test_random_user_method_takes_the_key_first_and_is_deterministic():
    h = jp.register_method(
        "noisy_l1", lambda key, x: jnp.abs(x) * jax.random.uniform(key, x.shape), random=True
    )
    x = jax.random.normal(jax.random.key(8), (8, 8))
    a, b = h(KEY, x, 0.5), h(KEY, x, 0.5)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int((~a).sum()) == 32
    scores = np.abs(np.asarray(x)) * np.asarray(jax.random.uniform(KEY, x.shape))
    np.testing.assert_array_equal(~np.asarray(a), lowest(scores, 32))
    assert not np.array_equal(np.asarray(h(jax.random.key(9), x, 0.5)), np.asarray(a))
    with pytest.raises(TypeError, match="key"):
        h(3, x, 0.5)


def test_options_are_static_keywords_with_defaults():
    def power(x, p=1.0, *, shift):
        return jnp.abs(x) ** p + shift

    f = jp.register_method("power", power)
    x = jnp.array([[1.0, -3.0, 2.0]])
    assert (~f(x, 1, shift=0.0)).tolist() == [[True, False, False]]
    with pytest.raises(TypeError, match="needs the keyword argument 'shift'"):
        f(x, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'q'"):
        f(x, 1, shift=0.0, q=2)
    with pytest.raises(TypeError, match="static and must be hashable"):
        f(x, 1, shift=[0.0])
    masks = jp.prune({"w": x}, "power", amount=1, shift=0.0, p=2.0, where="w")
    assert (~masks["w"]).tolist() == [[True, False, False]]
    with pytest.raises(TypeError, match="unexpected keyword argument 'q'"):
        jp.prune({"w": x}, "power", amount=1, shift=0.0, q=1, where="w")


def test_bad_registrations_and_scores_are_refused():
    for name in ("l1_unstructured", "identity", "l1", "random"):
        with pytest.raises(ValueError, match="registered already"):
            jp.register_method(name, row_weighted)
    jp.register_method("mine", row_weighted)
    with pytest.raises(ValueError, match="'mine' is registered already"):
        jp.register_method("mine", row_weighted)
    with pytest.raises(TypeError, match="callable"):
        jp.register_method("other", 3)
    with pytest.raises(TypeError, match="positional"):
        jp.register_method("other", lambda x: x, structured=True)
    with pytest.raises(TypeError, match="must be a bool"):
        jp.register_method("other", row_weighted, random=1)
    with pytest.raises(ValueError, match="non-empty"):
        jp.register_method("", row_weighted)
    bad = jp.register_method("bad_shape", lambda x: jnp.sum(x, axis=0))
    with pytest.raises(ValueError, match=re.escape("expected (4, 3) (one score per entry)")):
        bad(jnp.ones((4, 3)), 1)
    with pytest.raises(ValueError, match=re.escape("w: bad_shape: its scores")):
        jp.prune({"w": jnp.ones((4, 3))}, "bad_shape", amount=1, where="w")
    assert "other" not in _registry.names()


def test_user_method_in_the_pytree_layer_by_name_and_function_over_rounds():
    f = jp.register_method("row_weighted", row_weighted)
    ks = jax.random.split(jax.random.key(10), 3)
    params = {
        "a": {"kernel": jax.random.normal(ks[0], (8, 16)), "bias": jnp.zeros(16)},
        "b": {"kernel": jax.random.normal(ks[1], (16, 4))},
        "big": {"kernel": jax.random.normal(ks[2], (300, 256))},  # over the batch limit
    }
    m1 = jp.prune(params, "row_weighted", amount=0.25)
    m1f = jp.prune(params, f, amount=0.25)
    traced = jax.jit(lambda p: jp.prune(p, f, amount=0.25))(params)
    for path in ("a", "b", "big"):
        x = params[path]["kernel"]
        want = np.asarray(f(x, 0.25))
        np.testing.assert_array_equal(np.asarray(m1[path]["kernel"]), want)
        np.testing.assert_array_equal(np.asarray(m1f[path]["kernel"]), want)
        np.testing.assert_array_equal(np.asarray(traced[path]["kernel"]), want)
    assert m1["a"]["bias"].shape == ()
    # A second round prunes among the survivors, with the same count rule.
    m2 = jp.prune(params, "row_weighted", amount=0.5, masks=m1)
    for path in ("a", "b", "big"):
        x, prior = params[path]["kernel"], m1[path]["kernel"]
        want = np.asarray(f(x, 0.5, default_mask=prior))
        np.testing.assert_array_equal(np.asarray(m2[path]["kernel"]), want)
    # Amounts change, programs do not.
    size = _tree._program._cache_size()
    for amount in (0.3, 0.35, 0.6):
        jp.prune(params, "row_weighted", amount=amount, masks=m1)
    assert _tree._program._cache_size() == size


def test_user_method_in_global_selection():
    jp.register_method("row_weighted", row_weighted)
    params = {
        "a": jax.random.normal(jax.random.key(11), (4, 6)),
        "b": jax.random.normal(jax.random.key(12), (5, 3)),
    }
    masks = jp.global_unstructured(params, 0.4, method="row_weighted")
    scores = np.concatenate([np_row_weighted(params[k]).reshape(-1) for k in ("a", "b")])
    want = lowest(scores, round(0.4 * 39))
    got = np.concatenate([~np.asarray(masks[k]).reshape(-1) for k in ("a", "b")])
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="not random and takes no key"):
        jp.global_unstructured(params, 0.4, method="row_weighted", key=KEY)
    jp.register_method("chan", lambda x, dim: jnp.sum(x, axis=0), structured=True)
    with pytest.raises(ValueError, match="not a global method"):
        jp.global_unstructured(params, 0.4, method="chan")


def test_user_method_in_gradual_pruning():
    f = jp.register_method("row_weighted", row_weighted)
    params = {"w": jax.random.normal(jax.random.key(13), (8, 10))}
    tx = jp.gradual_pruning(optax.sgd(0.0), "row_weighted", jp.polynomial_schedule(0, 0.5, 0, 2))
    state = tx.init(params)
    update = jax.jit(tx.update)
    for _ in range(3):
        updates, state = update(jax.tree.map(jnp.zeros_like, params), state, params)
        params = optax.apply_updates(params, updates)
    mask = np.asarray(jp.current_masks(state)["w"])
    assert int((~mask).sum()) == 40
    assert (np.asarray(params["w"])[~mask] == 0).all()
    # The last round pruned the lowest-scored survivors of the one before.
    assert bool(jnp.all(f(params["w"], 0, default_mask=mask) == mask))
    with pytest.raises(TypeError, match="unexpected argument 'importance_scores'"):
        jp.gradual_pruning(optax.sgd(0.1), f, jp.constant_schedule(0.5), importance_scores=1)


def test_user_method_in_nnx():
    jp.register_method("row_weighted", row_weighted)
    model = nnx.Linear(6, 4, rngs=nnx.Rngs(0))
    kernel = np.asarray(model.kernel[...])
    jp.nnx.prune(model, "row_weighted", amount=0.5)
    mask = np.asarray(model.kernel_mask[...])
    np.testing.assert_array_equal(~mask, lowest(np_row_weighted(kernel), 12))
    jp.nnx.prune(model, "row_weighted", amount=0.5)  # a second round among the survivors
    assert int((~np.asarray(model.kernel_mask[...])).sum()) == 18


def test_user_method_on_the_command_line(tmp_path):
    jp.register_method("row_weighted", row_weighted)
    src, out = tmp_path / "w.npz", tmp_path / "o.npz"
    w = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    np.savez(src, w=w)
    args = ["prune", str(src), str(out), "--method", "row_weighted", "--amount", "3"]
    assert _cli.main(args) == 0
    np.testing.assert_array_equal(_io.load(str(out))["w"] == 0, lowest(np_row_weighted(w), 3))


def test_a_registered_method_compiles_once_per_shape_for_any_amount():
    f = jp.register_method("row_weighted", row_weighted)
    x = jnp.ones((7, 9))
    f(x, 0.1)
    size = _methods.compute_jit._cache_size()
    for amount in (1, 2, 5):
        f(x, amount)
    assert _methods.compute_jit._cache_size() == size
