import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from flax.core import FrozenDict

import jaxprune as jp
from jaxprune import _tree


def params_tree():
    k = jax.random.key(0)
    ks = jax.random.split(k, 4)
    return {
        "Conv_0": {"kernel": jax.random.normal(ks[0], (3, 3, 2, 16)), "bias": jnp.zeros(16)},
        "Dense_0": {"kernel": jax.random.normal(ks[1], (64, 32)), "bias": jnp.ones(32)},
        "Embed_0": {"embedding": jax.random.normal(ks[2], (50, 8))},
        "scale": jnp.ones(()),
    }


def test_default_where_selects_floating_leaves_with_two_dims(key):
    p = params_tree()
    m = jp.prune(p, "random_structured", key=key, amount=0.25)
    assert m["Conv_0"]["kernel"].shape == (1, 1, 1, 16)
    assert m["Dense_0"]["kernel"].shape == (1, 32)
    assert m["Embed_0"]["embedding"].shape == (1, 8)
    for leaf in (m["Conv_0"]["bias"], m["Dense_0"]["bias"], m["scale"]):
        assert leaf.shape == () and bool(leaf)
    assert int((~m["Dense_0"]["kernel"]).sum()) == 8


def test_leaf_masks_equal_core_with_folded_key(key):
    p = params_tree()
    m = jp.prune(p, "random_unstructured", key=key, amount=0.3)
    from jaxprune import _keys

    k = _keys.leaf_key(key, "Dense_0/kernel")
    np.testing.assert_array_equal(
        m["Dense_0"]["kernel"], jp.random_unstructured(k, p["Dense_0"]["kernel"], 0.3)
    )


def test_adding_a_layer_does_not_change_other_masks(key):
    p = params_tree()
    bigger = dict(p, Dense_1={"kernel": jnp.ones((32, 4))})
    a = jp.prune(p, "random_structured", key=key, amount=0.5)
    b = jp.prune(bigger, "random_structured", key=key, amount=0.5)
    for name in ("Conv_0", "Dense_0"):
        np.testing.assert_array_equal(a[name]["kernel"], b[name]["kernel"])


def test_l1_and_ln_per_leaf_equal_the_core():
    p = params_tree()
    m = jp.prune(p, jp.ln_structured, amount=0.5, n=1, dim=-1)
    np.testing.assert_array_equal(
        m["Conv_0"]["kernel"], jp.ln_structured(p["Conv_0"]["kernel"], 0.5, 1, -1)
    )
    m = jp.prune(p, "l1_unstructured", amount=0.5, where="kernel")
    np.testing.assert_array_equal(
        m["Dense_0"]["kernel"], jp.l1_unstructured(p["Dense_0"]["kernel"], 0.5)
    )
    assert m["Embed_0"]["embedding"].shape == ()


def test_where_regex_and_predicate(key):
    p = params_tree()
    m = jp.prune(p, "l1_unstructured", amount=0.5, where=r"^Dense_0/")
    assert m["Dense_0"]["bias"].shape == (32,)  # biases too when the regex says so
    assert m["Conv_0"]["kernel"].shape == ()
    m = jp.prune(
        p, "l1_unstructured", amount=0.5, where=lambda path, x: x.ndim == 2 and x.shape[-1] == 8
    )
    assert m["Embed_0"]["embedding"].shape == (50, 8)
    assert m["Dense_0"]["kernel"].shape == ()


def test_where_selecting_nothing_says_so():
    with pytest.raises(ValueError, match=r"where='nothing' selected no leaf of params"):
        jp.prune(params_tree(), "l1_unstructured", amount=0.5, where="nothing")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        jp.prune(params_tree(), "l1_unstructured", amount=0.5, where="(")
    with pytest.raises(TypeError, match="where must be"):
        jp.prune(params_tree(), "l1_unstructured", amount=0.5, where=3)


def test_errors_name_the_leaf_path(key):
    p = params_tree()
    with pytest.raises(ValueError, match=re.escape("Dense_0/bias: Structured pruning can only")):
        jp.prune(p, "random_structured", key=key, amount=0.5, where="Dense_0")
    with pytest.raises(ValueError, match=re.escape("Dense_0/kernel: amount=40 should be smaller")):
        jp.prune(p, "random_structured", key=key, amount=40, where="Dense_0/kernel")
    with pytest.raises(IndexError, match=re.escape("Conv_0/kernel: Invalid index dim=4")):
        jp.prune(p, "ln_structured", amount=0.5, n=2, dim=4)
    with pytest.raises(TypeError, match="Invalid type for amount"):
        jp.prune(p, "l1_unstructured", amount="half")
    with pytest.raises(TypeError, match="needs key="):
        jp.prune(p, "random_structured", amount=0.5)
    with pytest.raises(TypeError, match="takes no key"):
        jp.prune(p, "l1_unstructured", key=key, amount=0.5)
    with pytest.raises(TypeError, match="needs the keyword argument 'n'"):
        jp.prune(p, "ln_structured", amount=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dim'"):
        jp.prune(p, "l1_unstructured", amount=0.5, dim=0)
    with pytest.raises(ValueError, match="is not a pruning method"):
        jp.prune(p, "magnitude", amount=0.5)


def test_failed_call_computes_nothing_and_mutates_nothing(key):
    p = params_tree()
    before = jax.tree.map(np.asarray, p)
    n_compiled = _tree._program._cache_size()
    with pytest.raises(ValueError):
        # The first leaf is fine, the second is not: nothing may be computed.
        jp.prune(p, "random_structured", key=key, amount=17, where="kernel")
    assert _tree._program._cache_size() == n_compiled
    jax.tree.map(np.testing.assert_array_equal, p, before)


def test_whole_tree_is_one_program_and_amounts_do_not_recompile(key):
    p = params_tree()
    jp.prune(p, "random_structured", key=key, amount=0.1)
    size = _tree._program._cache_size()
    for a in (0.2, 0.5, 0.75, 3):
        jp.prune(p, "random_structured", key=key, amount=a)
    assert _tree._program._cache_size() == size


def test_prior_masks_iterative_semantics(key):
    p = params_tree()
    m1 = jp.prune(p, "random_structured", key=key, amount=0.5)
    m2 = jp.prune(p, "random_structured", key=jax.random.key(1), amount=0.5, masks=m1)
    assert int((~m2["Dense_0"]["kernel"]).sum()) == 16 + 8
    assert not (m2["Dense_0"]["kernel"] & ~m1["Dense_0"]["kernel"]).any()
    m3 = jp.prune(p, "l1_unstructured", amount=0.5, masks=m2, where="Dense_0/kernel")
    assert m3["Dense_0"]["kernel"].shape == (64, 32)
    assert int((~m3["Dense_0"]["kernel"]).sum()) == 64 * 24 + 64 * 4
    # Unselected leaves keep their prior mask.
    np.testing.assert_array_equal(m3["Conv_0"]["kernel"], m2["Conv_0"]["kernel"])


def test_float_amount_with_concrete_prior_rounds_like_python_without_a_host_count(key, monkeypatch):
    # A float amount over a concrete prior takes Python's rounding from a table inside the
    # program: no count of the unpruned channels on the host first, and no new program for
    # a new amount.
    from jaxprune import _methods

    p = {"w": jax.random.normal(key, (4, 16)), "v": jax.random.normal(key, (4, 10))}
    prior = jp.prune(p, "random_structured", key=key, amount=6)  # 10 and 4 channels left
    monkeypatch.setattr(_methods, "count_alive_now", lambda *a: pytest.fail("host count"))
    size = _tree._program._cache_size()
    for amount in (0.25, 0.45, 0.05):  # round(2.5) = 2, round(4.5) = 4, round(0.2) = 0
        m = jp.prune(p, "random_structured", key=key, amount=amount, masks=prior)
        assert int((~m["w"]).sum()) == 6 + round(amount * 10)
        assert int((~m["v"]).sum()) == 6 + round(amount * 4)
        assert not (m["w"] & ~prior["w"]).any()
    assert _tree._program._cache_size() == size + 1


def test_importance_scores_and_custom_masks_by_path():
    p = params_tree()
    scores = {"Dense_0": {"kernel": -jnp.abs(p["Dense_0"]["kernel"]) + 10.0}}
    m = jp.prune(p, "l1_unstructured", amount=0.5, importance_scores=scores)
    np.testing.assert_array_equal(
        m["Dense_0"]["kernel"], jp.l1_unstructured(scores["Dense_0"]["kernel"], 0.5)
    )
    custom = {"Dense_0": {"bias": jnp.arange(32) % 2 == 0}}
    m = jp.prune(p, "custom_from_mask", mask=custom)
    assert m["Dense_0"]["bias"].tolist() == [i % 2 == 0 for i in range(32)]
    assert m["Dense_0"]["kernel"].shape == ()
    with pytest.raises(ValueError, match="importance_scores has a leaf at 'nope'"):
        jp.prune(p, "l1_unstructured", amount=0.5, importance_scores={"nope": jnp.ones(2)})


def test_frozendict_tuples_and_nnx_state(key):
    p = params_tree()
    fm = jp.prune(FrozenDict(p), "random_structured", key=key, amount=0.5)
    assert isinstance(fm, FrozenDict)
    dm = jp.prune(p, "random_structured", key=key, amount=0.5)
    np.testing.assert_array_equal(fm["Dense_0"]["kernel"], dm["Dense_0"]["kernel"])
    tup = (jnp.ones((4, 4)), [jnp.ones((2, 6))])
    tm = jp.prune(tup, "random_structured", key=key, amount=0.5)
    assert tm[0].shape == (1, 4) and tm[1][0].shape == (1, 6)

    model = nnx.Sequential(nnx.Linear(4, 6, rngs=nnx.Rngs(0)), nnx.Linear(6, 2, rngs=nnx.Rngs(1)))
    state = nnx.state(model, nnx.Param)
    masks = jp.prune(state, "random_structured", key=key, amount=0.5, where="kernel")
    kernel = masks["layers"][0]["kernel"]
    kernel = kernel[...] if isinstance(kernel, nnx.Variable) else kernel
    from jaxprune import _keys

    expected = jp.random_structured(_keys.leaf_key(key, "layers/0/kernel"), jnp.ones((4, 6)), 0.5)
    np.testing.assert_array_equal(kernel, expected)


def test_under_jit_with_traced_params_and_amount(key):
    p = params_tree()
    traces = []

    @jax.jit
    def f(params, amount):
        traces.append(1)
        return jp.prune(params, "random_structured", key=key, amount=amount)

    for a, pruned in [(0.25, 8), (0.5, 16)]:
        m = f(p, jnp.float32(a))
        assert int((~m["Dense_0"]["kernel"]).sum()) == pruned
    assert len(traces) == 1
    eager = jp.prune(p, "random_structured", key=key, amount=0.5)
    np.testing.assert_array_equal(m["Conv_0"]["kernel"], eager["Conv_0"]["kernel"])


def test_vmap_over_keys():
    p = {"w": jnp.ones((8, 16))}
    keys = jax.random.split(jax.random.key(0), 64)
    masks = jax.vmap(lambda k: jp.prune(p, "random_structured", key=k, amount=0.25)["w"])(keys)
    assert masks.shape == (64, 1, 16)
    assert (np.asarray((~masks).sum(axis=(1, 2))) == 4).all()


def test_apply_masks_and_sparsity():
    p = params_tree()
    m = jp.prune(p, "l1_unstructured", amount=0.5, where="kernel")
    out = jp.apply_masks(p, m)
    assert out["Dense_0"]["bias"] is p["Dense_0"]["bias"]  # scalar-True mask: untouched
    np.testing.assert_array_equal(
        out["Dense_0"]["kernel"], jnp.where(m["Dense_0"]["kernel"], p["Dense_0"]["kernel"], 0)
    )
    total = sum(x.size for x in jax.tree.leaves(p))
    zeros = 16 + 0 + (288 // 2) + (2048 // 2)  # conv bias zeros + half of each kernel
    assert jp.sparsity(p, m) == pytest.approx(zeros / total)
    assert jp.sparsity(out) == jp.sparsity(p, m)
    with pytest.raises(ValueError, match="masks has no leaf"):
        jp.apply_masks(p, {"Dense_0": {"kernel": m["Dense_0"]["kernel"]}})


def test_apply_masks_donate_gives_the_same_result_and_consumes_masked_leaves():
    k1, k2 = jax.random.split(jax.random.key(3))
    params = {
        "w": jax.random.normal(k1, (64, 32)),
        "b": jnp.ones(32),
        "v": jax.random.normal(k2, (8, 32)),
    }
    masks = jp.prune(params, "random_structured", key=jax.random.key(0), amount=0.5)
    want = jp.apply_masks(params, masks)
    copy = jax.tree.map(lambda x: x + 0, params)
    got = jp.apply_masks(copy, masks, donate=True)
    for k in params:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]))
    assert copy["w"].is_deleted() and copy["v"].is_deleted()
    assert not copy["b"].is_deleted() and got["b"] is copy["b"]  # scalar True: untouched
    with pytest.raises(RuntimeError):
        np.asarray(copy["w"])
    # Inside a traced function the flag changes nothing.
    traced = jax.jit(lambda p, m: jp.apply_masks(p, m, donate=True))(params, masks)
    np.testing.assert_array_equal(np.asarray(traced["w"]), np.asarray(want["w"]))
    assert not params["w"].is_deleted()


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("l1_unstructured", dict(amount=0.4)),
        ("random_unstructured", dict(amount=0.4, key=jax.random.key(5))),
    ],
)
def test_large_leaves_eager_kernels_equal_the_one_program(method, kwargs):
    # Eagerly, selections over more than BATCH_LIMIT units run in kernels cached by shape;
    # under jit they join one program. Same masks, same per-path keys.
    k = jax.random.split(jax.random.key(1), 3)
    params = {
        "a": jax.random.normal(k[0], (300, 256)),  # 76800 units: large
        "b": jax.random.normal(k[1], (300, 256)),
        "c": jax.random.normal(k[2], (16, 8)),  # small: batched in the tree program
    }
    prior = {"a": jax.random.bernoulli(k[0], 0.8, (300, 256)), "b": True, "c": True}
    for masks in (None, prior):
        eager = jp.prune(params, method, masks=masks, **kwargs)
        jitted = jax.jit(lambda p, m, method=method: jp.prune(p, method, masks=m, **kwargs))(
            params, masks
        )
        for name in params:
            np.testing.assert_array_equal(np.asarray(eager[name]), np.asarray(jitted[name]))
        n = 300 * 256
        alive = n if masks is None else int(np.asarray(prior["a"]).sum())
        assert int((~np.asarray(eager["a"])).sum()) == n - alive + round(0.4 * alive)
        if method == "random_unstructured":
            one = jp.random_unstructured(
                jp.leaf_key(kwargs["key"], "a"),
                params["a"],
                0.4,
                default_mask=None if masks is None else masks["a"],
            )
            np.testing.assert_array_equal(np.asarray(eager["a"]), np.asarray(one))


@pytest.mark.parametrize(
    "call",
    [
        lambda p: jp.prune(p, "l1_unstructured", amount=1),
        lambda p: jp.apply_masks(p, jax.tree.map(lambda x: jnp.ones((), bool), p)),
        lambda p: jp.global_unstructured(p, 1),
        lambda p: jp.sparsity(p),
    ],
)
def test_leaves_whose_paths_collide_are_refused_naming_both(call):
    params = {"a/b": jnp.ones((2, 3)), "a": {"b": jnp.ones((3, 2))}}
    with pytest.raises(ValueError, match=re.escape("['a']['b'] and ['a/b']")):
        call(params)


@pytest.mark.parametrize(
    "method, kw",
    [
        ("random_structured", {"key": jax.random.key(1), "amount": 0.5}),
        ("random_unstructured", {"key": jax.random.key(2), "amount": 0.3}),
        ("l1_unstructured", {"amount": 0.5}),
        ("ln_structured", {"amount": 0.25, "n": 2}),
    ],
)
def test_under_a_callers_jit_with_closed_over_arrays_nothing_leaks(method, kw):
    # Everything concrete (the key, the prior masks) is closed over by the caller's function:
    # no eager work may run inside its trace (no host count, no cached device constant), or
    # a tracer leaks and ahead-of-time compilation breaks.
    params = {"a": jax.random.normal(jax.random.key(3), (8, 12)), "b": jnp.ones((12, 4))}
    prior = jp.prune(params, "l1_unstructured", amount=0.25)

    def f(p):
        return jp.prune(p, method, masks=prior, **kw)

    from jaxprune import _amount, _batch

    # Empty the caches of device constants that eager calls fill, so that a trace which
    # wrongly filled them would leave its tracers there.
    _batch._row_index.cache_clear()
    _amount.device_table.cache_clear()
    with jax.checking_leaks():
        got = jax.jit(f)(params)
    want = f(params)
    compiled = jax.jit(f).lower(params).compile()
    for name in params:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]))
        np.testing.assert_array_equal(np.asarray(compiled(params)[name]), np.asarray(want[name]))
