"""Block sparsity: the blocks of smallest norm (or random ones) pruned, exact counts over
unpruned blocks, partial edge blocks, tensors above 2-D, priors, jit/vmap, errors, the
pytree layer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxprune as jp


def ref_blocks(x, amount, block_shape, n, prior=None):
    """NumPy reference: per leading index, blocks of the last two axes (partial at the
    edges), L_n norms of their real entries, the k lowest alive ones pruned (ties: lower
    block index, row-major over leading indices and the grid), k from Python's round."""
    x = np.asarray(x, np.float64)
    prior = np.ones(x.shape, bool) if prior is None else np.broadcast_to(prior, x.shape)
    rows, cols = block_shape
    r, c = x.shape[-2:]
    blocks = []  # (norm, index, lead, (r0, c0))
    for lead in np.ndindex(x.shape[:-2]):
        for r0 in range(0, r, rows):
            for c0 in range(0, c, cols):
                part = np.abs(x[lead][r0 : r0 + rows, c0 : c0 + cols])
                alive = prior[lead][r0 : r0 + rows, c0 : c0 + cols].any()
                norm = part.max() if math.isinf(n) else (part**n).sum() ** (1 / n)
                blocks.append((norm, len(blocks), lead, (r0, c0), alive))
    alive_blocks = [b for b in blocks if b[4]]
    k = amount if isinstance(amount, int) else round(amount * len(alive_blocks))
    mask = prior.copy()
    for _norm, _, lead, (r0, c0), _ in sorted(alive_blocks, key=lambda b: (b[0], b[1]))[:k]:
        mask[lead][r0 : r0 + rows, c0 : c0 + cols] = False
    return mask


CASES = [((8, 8), (2, 2)), ((10, 7), (4, 4)), ((3, 3, 10, 7), (4, 4)), ((6, 9), (1, 3)),
         ((5, 5), (5, 5)), ((4, 12), (4, 1))]  # fmt: skip


@pytest.mark.parametrize("shape, block", CASES)
@pytest.mark.parametrize("n", [1, 2, math.inf])
@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 1.0, 1])
def test_smallest_norm_blocks_pruned_exactly(shape, block, n, amount):
    x = jax.random.normal(jax.random.key(len(shape) + block[0]), shape)
    mask = jp.block_structured(x, amount, block, n)
    assert mask.shape == shape and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(mask, ref_blocks(x, amount, block, n))


def test_rounds_over_a_prior_count_unpruned_blocks_and_revive_nothing():
    x = jax.random.normal(jax.random.key(1), (2, 12, 10))
    first = jp.block_structured(x, 0.25, (4, 4))
    second = jp.block_structured(x, 0.5, (4, 4), default_mask=first)
    np.testing.assert_array_equal(second, ref_blocks(x, 0.5, (4, 4), 1, np.asarray(first)))
    assert not bool((second & ~first).any())
    # An entry-level prior: a block stays unpruned while any of its entries is.
    prior = jax.random.bernoulli(jax.random.key(2), 0.3, x.shape)
    third = jp.block_structured(x, 3, (4, 4), default_mask=prior)
    np.testing.assert_array_equal(third, ref_blocks(x, 3, (4, 4), 1, np.asarray(prior)))
    with pytest.raises(ValueError, match="amount=100"):
        jp.block_structured(x, 100, (4, 4), default_mask=first)


def test_ties_prune_the_lower_block_first_and_importance_scores_decide():
    ones = jnp.ones((4, 8))
    assert jp.block_structured(ones, 1, (4, 4)).astype(int)[0].tolist() == [0] * 4 + [1] * 4
    scores = jnp.concatenate([jnp.full((4, 4), 9.0), jnp.ones((4, 4))], axis=1)
    by = jp.block_structured(ones, 1, (4, 4), importance_scores=scores)
    assert by.astype(int)[0].tolist() == [1] * 4 + [0] * 4


def test_jit_and_vmap_give_the_eager_masks():
    x = jax.random.normal(jax.random.key(3), (4, 9, 6))
    eager = jnp.stack([jp.block_structured(x[i], 0.5, (3, 2)) for i in range(4)])
    np.testing.assert_array_equal(jax.vmap(lambda w: jp.block_structured(w, 0.5, (3, 2)))(x), eager)
    np.testing.assert_array_equal(
        jax.jit(lambda w: jp.block_structured(w, 0.5, (3, 2)))(x[0]), eager[0]
    )


def test_random_blocks_counts_determinism_and_distribution():
    x = jnp.ones((8, 8))
    a = jp.random_block_structured(jax.random.key(0), x, 0.25, (2, 2))
    assert int((~a).sum()) == 4 * 4  # 4 of the 16 blocks, 4 entries each
    np.testing.assert_array_equal(a, jp.random_block_structured(jax.random.key(0), x, 0.25, (2, 2)))
    counts = np.zeros((4, 4))
    for s in range(400):
        m = np.asarray(jp.random_block_structured(jax.random.key(s), x, 4, (2, 2)))
        blocks = m.reshape(4, 2, 4, 2).any(axis=(1, 3))
        assert (~blocks).sum() == 4 and (m == np.repeat(np.repeat(blocks, 2, 0), 2, 1)).all()
        counts += ~blocks
    # Each block pruned a quarter of the time: 100 of 400, binomial sd about 8.7.
    assert np.all(np.abs(counts - 100) < 40), counts
    prior = jp.block_structured(jax.random.normal(jax.random.key(9), (8, 8)), 0.5, (2, 2))
    b = jp.random_block_structured(jax.random.key(1), x, 2, (2, 2), default_mask=prior)
    assert not bool((b & ~prior).any()) and int((prior & ~b).sum()) == 2 * 4


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: jp.block_structured(jnp.ones(8), 1, (2, 2)), ValueError, "two dimensions"),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1, 2), TypeError, "block_shape"),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1, (2, 0)), ValueError, "at least 1"),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1, (2, 2.0)), TypeError, "block_shape"),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1, (2, 2), n=0), ValueError, "n=0"),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1, (2, 2), n="fro"), ValueError, "n="),
        (
            lambda: jp.block_structured(jnp.ones((4, 4)), 5, (2, 2)),
            ValueError,
            r"amount=5 .*=4 \(blocks, a grid of shape \(2, 2\)\)",
        ),
        (lambda: jp.block_structured(jnp.ones((4, 4)), 1.5, (2, 2)), ValueError, "amount=1.5"),
        (
            lambda: jp.random_block_structured(jax.random.key(0), jnp.ones((4, 4)), -1, (2, 2)),
            ValueError,
            "amount=-1",
        ),
    ],
)
def test_bad_input_fails_early_naming_the_parameter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_pytree_layer_and_its_refusals():
    k = jax.random.split(jax.random.key(5), 2)
    params = {"Dense_0": {"kernel": jax.random.normal(k[0], (16, 12)), "bias": jnp.ones(12)},
              "Conv_0": {"kernel": jax.random.normal(k[1], (3, 3, 8, 8))}}  # fmt: skip
    masks = jp.prune(params, "block_structured", amount=0.5, block_shape=(4, 4), n=2)
    np.testing.assert_array_equal(
        masks["Conv_0"]["kernel"],
        jp.block_structured(params["Conv_0"]["kernel"], 0.5, (4, 4), 2),
    )
    assert masks["Dense_0"]["bias"].shape == ()
    key = jax.random.key(6)
    again = jp.prune(params, "random_block_structured", key=key, amount=1, block_shape=(4, 4),
                     masks=masks)  # fmt: skip
    twin = jp.random_block_structured(jp.leaf_key(key, "Dense_0/kernel"),
                                      params["Dense_0"]["kernel"], 1, (4, 4),
                                      default_mask=masks["Dense_0"]["kernel"])  # fmt: skip
    np.testing.assert_array_equal(again["Dense_0"]["kernel"], twin)
    with pytest.raises(TypeError, match="needs the keyword argument 'block_shape'"):
        jp.prune(params, "block_structured", amount=0.5)
    with pytest.raises(ValueError, match="not a global method"):
        jp.global_unstructured(params, 0.5, method="block_structured")


def test_the_cli_prunes_blocks_in_the_file_layout_and_twins_agree(tmp_path, capsys):
    import torch

    from jaxprune import _cli

    rng = np.random.default_rng(0)
    conv = rng.standard_normal((3, 3, 8, 12)).astype(np.float32)  # Flax (kh, kw, in, out)
    dense = rng.standard_normal((10, 6)).astype(np.float32)  # (in, out): partial blocks
    np.savez(tmp_path / "w.npz", **{"c/kernel": conv, "d/kernel": dense, "d/bias": np.ones(6)})
    torch_state = {
        "c.weight": torch.from_numpy(conv.transpose(3, 2, 0, 1).copy()),
        "d.weight": torch.from_numpy(dense.T.copy()),
        "d.bias": torch.ones(6),
    }
    torch.save(torch_state, tmp_path / "w.pt")
    args = ["--method", "block_structured", "--amount", "0.5", "--n", "2"]
    flax_args = [str(tmp_path / "w.npz"), str(tmp_path / "o.npz"), "--block-shape", "4", "3"]
    torch_args = [str(tmp_path / "w.pt"), str(tmp_path / "o.pt"), "--block-shape", "3", "4"]
    assert _cli.main(["prune", *flax_args, *args]) == 0
    assert _cli.main(["prune", *torch_args, *args]) == 0
    out = capsys.readouterr().out
    assert "of the last two axes, Flax's" in out and "of torch's (out, in) matrix" in out
    f, t = np.load(tmp_path / "o.npz"), torch.load(tmp_path / "o.pt")
    np.testing.assert_array_equal(
        f["d/kernel"], np.asarray(jp.apply_mask(dense, jp.block_structured(dense, 0.5, (4, 3), 2)))
    )
    np.testing.assert_array_equal(
        f["c/kernel"], np.asarray(jp.apply_mask(conv, jp.block_structured(conv, 0.5, (4, 3), 2)))
    )
    np.testing.assert_array_equal(t["c.weight"].numpy().transpose(2, 3, 1, 0), f["c/kernel"])
    np.testing.assert_array_equal(t["d.weight"].numpy().T, f["d/kernel"])
    np.testing.assert_array_equal(t["d.bias"].numpy(), np.ones(6))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "block_structured", "--amount", "0.5"], "needs --block-shape"),
        (["--method", "block_structured", "--block-shape", "2", "2"], "needs --amount"),
        (["--method", "block_structured", "--amount", "1", "--block-shape", "0", "2"], "at least"),
        (
            ["--method", "random_block_structured", "--amount", "1", "--block-shape", "2", "2"]
            + ["--n", "2"],
            "takes no --n",
        ),
        (["--method", "block_structured", "--amount", "9", "--block-shape", "4", "4"], "blocks"),
    ],
)
def test_the_cli_refuses_bad_block_arguments_in_one_line(tmp_path, capsys, args, message):
    from jaxprune import _cli

    np.savez(tmp_path / "w.npz", w=np.ones((8, 4), np.float32))
    assert _cli.main(["prune", str(tmp_path / "w.npz"), str(tmp_path / "o.npz"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o.npz").exists()
