"""Small selections of a tree run as the padded rows of one array per group of widths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp
from jaxprune import _amount, _batch, _methods, _registry, _tree

KEY = jax.random.key(7)


def mixed_params():
    """Widths 40, 36, 32, 12 and 10, some units tied: one group, or (with no slack) 40-32
    in one and 12-10 in another."""
    ks = jax.random.split(jax.random.key(3), 6)
    return {
        "a": jax.random.normal(ks[0], (6, 40)),
        "b": jax.random.normal(ks[1], (5, 36)),
        "c": jax.random.normal(ks[2], (3, 3, 2, 32)),
        "d": jax.random.normal(ks[3], (4, 12)),
        "e": jnp.round(jax.random.normal(ks[4], (7, 10))),  # ties among entries and norms
        "f": jax.random.normal(ks[5], (40, 36)),
    }


def priors(params):
    """No prior, a keepdims prior, a scalar prior, and full priors (a structured call with a
    full prior takes its mask out of the rows inside the program)."""
    ks = jax.random.split(jax.random.key(11), 4)
    return {
        "a": jax.random.bernoulli(ks[0], 0.7, (1, 40)),
        "b": jnp.array(True),
        "c": jax.random.bernoulli(ks[1], 0.8, (3, 3, 2, 32)),
        "d": None,
        "e": jax.random.bernoulli(ks[2], 0.6, (7, 10)),
        "f": jax.random.bernoulli(ks[3], 0.9, (1, 36)),
    }


def core(method, name, x, prior, **kw):
    if method == "random_structured":
        return jp.random_structured(jp.leaf_key(KEY, name), x, kw["amount"], -1, default_mask=prior)
    if method == "random_unstructured":
        return jp.random_unstructured(jp.leaf_key(KEY, name), x, kw["amount"], default_mask=prior)
    if method == "l1_unstructured":
        return jp.l1_unstructured(x, kw["amount"], default_mask=prior)
    return jp.ln_structured(x, kw["amount"], kw["n"], -1, default_mask=prior)


CASES = [
    ("random_structured", dict(amount=0.3)),
    ("random_structured", dict(amount=5)),
    ("random_unstructured", dict(amount=0.45)),
    ("l1_unstructured", dict(amount=0.5)),
    ("ln_structured", dict(amount=0.4, n=1)),
    ("ln_structured", dict(amount=3, n=2)),
]


@pytest.mark.parametrize("method, kw", CASES)
@pytest.mark.parametrize("with_priors", [False, True])
@pytest.mark.parametrize("slack", [0, _batch.PAD_SLACK])
def test_rows_give_each_leaf_its_own_mask(method, kw, with_priors, slack, monkeypatch):
    monkeypatch.setattr(_batch, "PAD_SLACK", slack)
    params = mixed_params()
    prior = priors(params) if with_priors else {}
    masks = {k: v for k, v in prior.items() if v is not None} or None
    key = {"key": KEY} if method.startswith("random") else {}
    eager = jp.prune(params, method, masks=masks, **key, **kw)
    traced = jax.jit(lambda p, m: jp.prune(p, method, masks=m, **key, **kw))(params, masks)
    for name, x in params.items():
        want = np.asarray(core(method, name, x, prior.get(name), **kw))
        np.testing.assert_array_equal(np.asarray(eager[name]), want, err_msg=name)
        np.testing.assert_array_equal(np.asarray(traced[name]), want, err_msg=name)
        assert eager[name].shape == want.shape


@pytest.mark.parametrize("impl", ["rbg", "threefry_not_partitionable"])
def test_draws_without_prefix_property_are_made_per_leaf(impl):
    # Bits are drawn at the group's width only where a shorter draw is a prefix of a longer
    # one; other generators draw per leaf, and the masks are the core's either way.
    params = mixed_params()
    key = jax.random.key(5, impl="rbg") if impl == "rbg" else jax.random.key(5)
    before = jax.config.jax_threefry_partitionable
    if impl != "rbg":
        jax.config.update("jax_threefry_partitionable", False)
    try:
        for method in ("random_structured", "random_unstructured"):
            masks = jp.prune(params, method, key=key, amount=0.3)
            for name, x in params.items():
                k = jp.leaf_key(key, name)
                one = (
                    jp.random_structured(k, x, 0.3)
                    if method == "random_structured"
                    else jp.random_unstructured(k, x, 0.3)
                )
                np.testing.assert_array_equal(np.asarray(masks[name]), np.asarray(one))
    finally:
        jax.config.update("jax_threefry_partitionable", before)


def spec(shape, method="random_structured"):
    options = {"n": 2} if method == "ln_structured" else {}
    return _methods.plan(_registry.get(method), shape, dim=-1, **options)


EXACT = _amount.EXACT


def test_plan_pads_close_widths_together_and_keeps_far_ones_apart():
    # 24 GPT-2 blocks: 4096- and 3072-channel layers share a group (1.14x padding); the
    # 1024-channel ones would make it 1.78x, so they form their own.
    block = [(1024, 3072), (1024, 1024), (1024, 4096), (4096, 1024)]
    specs = [spec(s) for _ in range(24) for s in block]
    groups = _batch.plan(specs, (EXACT,) * 96, [None] * 96)
    assert [g.width for g in groups] == [4096, 1024]
    assert sorted(specs[i].units for i in groups[0].members)[::24] == [3072, 4096]
    assert {specs[i].units for i in groups[1].members} == {1024}
    assert sorted(i for g in groups for i in g.members) == list(range(96))
    # Widest first: the first member sets the width (and its count table is the longest).
    assert all(specs[g.members[0]].units == g.width for g in groups)


def test_plan_lets_small_widths_share_a_group_within_the_slack(monkeypatch):
    # ResNet-50's 54 weights (64 to 2048 channels) make one group: 84k dead entries cost
    # less selection time than five more groups cost compilation.
    from benchmarks.suite import _models

    specs = [spec(s) for _, s in _models.resnet50_shapes(64)]
    groups = _batch.plan(specs, (EXACT,) * len(specs), [None] * len(specs))
    assert [(g.width, len(g.members)) for g in groups] == [(2048, 54)]
    monkeypatch.setattr(_batch, "PAD_SLACK", 0)  # the ratio alone
    groups = _batch.plan(specs, (EXACT,) * len(specs), [None] * len(specs))
    assert [g.width for g in groups] == [2048, 1024, 512, 256, 64]
    for g in groups:  # within the ratio
        real = sum(specs[i].units for i in g.members)
        assert len(g.members) * g.width <= _batch.PAD_LIMIT * real


def test_plan_separates_key_dtypes_and_count_kinds_and_leaves_large_calls_alone():
    f32, bf16, i32 = jnp.zeros(1), jnp.zeros(1, jnp.bfloat16), jnp.zeros(1, jnp.int32)
    specs = [
        spec((4, 8), "l1_unstructured"),
        spec((4, 8), "l1_unstructured"),
        spec((4, 8), "l1_unstructured"),
        spec((4, 8), "l1_unstructured"),
        spec((300, 256), "l1_unstructured"),  # 76800 units: over BATCH_LIMIT
        spec((4, 0), "l1_unstructured"),  # no units
    ]
    scores = [f32, bf16, i32, f32, f32, f32]
    counts = (EXACT, EXACT, EXACT, _amount.TABLE, EXACT, EXACT)
    groups = _batch.plan(specs, counts, scores)
    assert sorted(g.members for g in groups) == [(0,), (1,), (2,), (3,)]
    # ln_structured norms of float32 and bfloat16 scores are both float32: one group.
    ln = [spec((4, 8), "ln_structured"), spec((4, 8), "ln_structured")]
    assert _batch.plan(ln, (EXACT, EXACT), [f32, bf16]) == (_batch.Group((0, 1), 8),)


def test_eager_program_returns_rows_not_one_output_per_leaf(monkeypatch):
    # Eagerly the program's outputs are one block per group; each leaf's mask is taken from
    # its row by a kernel compiled per mask shape (so 24 blocks compile 3 small kernels, not
    # 96 output kernels in the program).
    params = {f"h{i}_{w}": jnp.ones((8, w)) for i in range(6) for w in (16, 12, 4)}
    seen = {}
    real = _tree._program

    def spy(**kwargs):
        direct, blocks = real(**kwargs)
        seen["out"] = (list(direct), blocks)  # before the caller fills in the rows
        return direct, blocks

    monkeypatch.setattr(_tree, "_program", spy)
    masks = jp.prune(params, "random_structured", key=KEY, amount=0.5)
    direct, blocks = seen["out"]
    assert all(m is None for m in direct)
    assert [b.shape for b in blocks] == [(18, 16)]  # 72 dead entries: one group
    for name, x in params.items():
        want = jp.random_structured(jp.leaf_key(KEY, name), x, 0.5)
        np.testing.assert_array_equal(np.asarray(masks[name]), np.asarray(want))
    assert _batch._take._cache_size() >= 3


def test_rows_keep_exact_counts_on_wide_trees():
    # 40 leaves of 3 widths with priors; each leaf prunes Python's round(amount * alive).
    ks = jax.random.split(jax.random.key(2), 40)
    widths = [33, 30, 29]
    params = {f"w{i}": jax.random.normal(ks[i], (5, widths[i % 3])) for i in range(40)}
    prior = {
        n: jax.random.bernoulli(ks[i], 0.75, (1, x.shape[1]))
        for i, (n, x) in enumerate(params.items())
    }
    for amount in (0.25, 0.5, 0.37):
        masks = jp.prune(params, "random_structured", key=KEY, amount=amount, masks=prior)
        for name, x in params.items():
            alive = int(np.asarray(prior[name]).sum())
            pruned = int((~np.asarray(masks[name])).sum())
            assert pruned == x.shape[1] - alive + round(amount * alive), name
            assert not (np.asarray(masks[name]) & ~np.asarray(prior[name])).any()
