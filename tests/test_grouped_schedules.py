"""Gradual pruning with the grouped methods: N:M ramps n, blocks ramp their count; masks
recomputed inside the jitted update, never reviving an entry, without recompiling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune as jp
from tests.test_nm import ref_nm


def _params():
    keys = jax.random.split(jax.random.key(3), 3)
    return {
        "dense": {"kernel": jax.random.normal(keys[0], (16, 6)), "bias": jnp.ones(6)},
        "conv": {"kernel": jax.random.normal(keys[1], (3, 3, 8, 4))},
    }


def _run(tx, params, steps):
    """``steps`` updates with unit gradients: the (params, masks) after each, and the jitted
    update function (to count its compilations)."""
    state = tx.init(params)
    update = jax.jit(tx.update)
    out = []
    for _ in range(steps):
        updates, state = update(jax.tree.map(jnp.ones_like, params), state, params)
        params = optax.apply_updates(params, updates)
        out.append((params, jp.current_masks(state)))
    return out, update


@pytest.mark.parametrize("s, kept", [(0.0, 4), (0.2, 3), (0.3, 3), (0.5, 2), (0.8, 2), (1.0, 2)])
def test_nm_ramp_keeps_m_minus_round_sparsity_m_never_below_n(s, kept):
    from jaxprune._nm import kept_per_group

    assert int(kept_per_group(2, 4, s)) == kept
    assert int(kept_per_group(1, 8, 0.5)) == 4 and int(kept_per_group(1, 8, 1.0)) == 1


def test_nm_gradual_ramps_to_exact_nm_never_reviving_and_without_recompiling():
    params = _params()
    schedule = jp.polynomial_schedule(0.0, 0.5, begin_step=0, end_step=4, power=1.0)
    tx = jp.gradual_pruning(optax.sgd(0.01), "nm_unstructured", schedule, where="kernel", n=2, m=4)
    # sparsity per step 0, .125, .25, .375, .5: kept per group 4, 4, 3, 2, 2 (1.5 rounds to 2)
    want = [4, 4, 3, 2, 2, 2]
    before, prev = None, params
    history, update = _run(tx, params, 6)
    for t, (p, masks) in enumerate(history):
        for path, dim in (("dense", 0), ("conv", 2)):
            mask = np.asarray(masks[path]["kernel"])
            counts = np.moveaxis(mask, dim, -1).reshape(-1, 4).sum(-1)
            assert (counts == want[t]).all(), (t, path)
            # the entries kept are the largest of the current weights among the alive ones
            if before is not None:
                prior = before[path]["kernel"]
                ref = ref_nm(prev[path]["kernel"], prior, want[t], 4, dim)
                if want[t] < want[t - 1]:
                    np.testing.assert_array_equal(mask, ref)
                assert not (mask & ~np.asarray(prior)).any()  # nothing revived
            assert (np.asarray(p[path]["kernel"])[~mask] == 0).all()
        assert masks["dense"]["bias"].shape == ()
        before, prev = masks, p
    assert jp.is_nm(p["dense"]["kernel"], 2, 4) and jp.is_nm(p["conv"]["kernel"], 2, 4)
    assert update._cache_size() == 1


def test_random_nm_gradual_is_exact_deterministic_and_keyed():
    params = _params()
    schedule = jp.polynomial_schedule(0.0, 0.75, begin_step=0, end_step=3, power=1.0)

    def final(key):
        tx = jp.gradual_pruning(
            optax.sgd(0.0), "random_nm", schedule, key=key, where="dense/kernel", n=1, m=4
        )
        (*_, (_, masks)), _ = _run(tx, params, 4)
        return np.asarray(masks["dense"]["kernel"])

    a, b, c = final(jax.random.key(0)), final(jax.random.key(0)), final(jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a.reshape(4, 4, 6).sum(1) == 1).all()


def test_random_nm_gradual_spreads_evenly_over_positions():
    params = {"w": jnp.ones((4, 2000))}
    tx = jp.gradual_pruning(
        optax.sgd(0.0), "random_nm", jp.constant_schedule(0.5), key=jax.random.key(7), n=2, m=4
    )
    [(_, masks)], _ = _run(tx, params, 1)
    mask = np.asarray(masks["w"])
    assert (mask.sum(0) == 2).all()  # each of 2000 columns keeps 2 of its 4 rows
    # each position in a group is kept with probability 1/2: 1000 of 2000 per row, give or
    # take 3.5 sigma (sigma = sqrt(2000) / 2 ~ 22)
    assert (np.abs(mask.sum(1) - 1000) < 80).all(), mask.sum(1)


@pytest.mark.parametrize("method", ["block_structured", "random_block_structured"])
def test_block_gradual_reaches_the_scheduled_block_count(method):
    params = {"w": jax.random.normal(jax.random.key(0), (10, 9)), "b": jnp.ones(9)}
    # (4, 3) blocks: a 3 x 3 grid with partial blocks on the last block row
    schedule = jp.polynomial_schedule(0.0, 2 / 3, begin_step=0, end_step=3, power=1.0)
    key = jax.random.key(1) if method.startswith("random") else None
    tx = jp.gradual_pruning(
        optax.sgd(0.0), method, schedule, key=key, where="w", block_shape=(4, 3)
    )
    want_blocks = [9, 7, 5, 3, 3]  # round(s * 9) pruned, s = 0, 2/9, 4/9, 6/9
    before = None
    history, update = _run(tx, params, 5)
    for t, (_, masks) in enumerate(history):
        mask = np.asarray(masks["w"])
        padded = np.pad(mask, ((0, 2), (0, 0)))
        blocks = padded.reshape(3, 4, 3, 3).transpose(0, 2, 1, 3).reshape(9, -1)
        kept_blocks = blocks.any(1)
        # a block is kept whole (its real entries) or pruned whole
        full = np.pad(np.ones(mask.shape, bool), ((0, 2), (0, 0)))
        full = full.reshape(3, 4, 3, 3).transpose(0, 2, 1, 3).reshape(9, -1)
        assert (blocks == (full & kept_blocks[:, None])).all()
        assert kept_blocks.sum() == want_blocks[t]
        if before is not None:
            assert not (mask & ~before).any()
        before = mask
    assert update._cache_size() == 1
    if key is None:  # the smallest-L1 blocks of the (unchanged) weights went
        norms = np.abs(np.pad(np.asarray(params["w"]), ((0, 2), (0, 0))))
        norms = norms.reshape(3, 4, 3, 3).sum((1, 3)).reshape(9)
        np.testing.assert_array_equal(np.sort(np.argsort(norms)[6:]), np.flatnonzero(kept_blocks))


def test_block_gradual_matches_block_structured_one_shot():
    w = jax.random.normal(jax.random.key(2), (12, 8))
    tx = jp.gradual_pruning(
        optax.sgd(0.0), "block_structured", jp.constant_schedule(0.5), block_shape=(2, 4), n=2
    )
    [(_, masks)], _ = _run(tx, {"w": w}, 1)
    np.testing.assert_array_equal(masks["w"], jp.block_structured(w, 6, (2, 4), n=2))


def test_grouped_gradual_refusals_name_the_problem():
    params = _params()
    sgd = optax.sgd(0.1)
    with pytest.raises(TypeError, match="unexpected argument 'amount'"):
        jp.gradual_pruning(sgd, "block_structured", jp.constant_schedule(0.5), amount=2)
    with pytest.raises(TypeError, match="needs the keyword argument 'block_shape'"):
        jp.gradual_pruning(sgd, "block_structured", jp.constant_schedule(0.5))
    with pytest.raises(TypeError, match="unexpected argument 'n'"):
        jp.gradual_pruning(
            sgd,
            "random_block_structured",
            jp.constant_schedule(0.5),
            key=jax.random.key(0),
            block_shape=(2, 2),
            n=2,
        )
    tx = jp.gradual_pruning(sgd, "nm_unstructured", jp.constant_schedule(0.5), n=2, m=3)
    with pytest.raises(ValueError, match="conv/kernel.*not a multiple of m=3"):
        tx.init(params)
    tx = jp.gradual_pruning(sgd, "nm_unstructured", jp.constant_schedule(0.5), n=5, m=4)
    with pytest.raises(ValueError, match="n=5 must be between 0 and m=4"):
        tx.init(params)
    tx = jp.gradual_pruning(
        sgd, "block_structured", jp.constant_schedule(0.5), block_shape=(2, 2), where="bias"
    )
    with pytest.raises(ValueError, match="at least two dimensions"):
        tx.init(params)
    with pytest.raises(TypeError, match="needs key="):
        jp.gradual_pruning(sgd, "random_nm", jp.constant_schedule(0.5), n=2, m=4)
