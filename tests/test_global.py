import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from jp_helpers import ref_lowest

import jaxprune as jp


def tree(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "a": {"kernel": jnp.asarray(rng.standard_normal((30, 20)), jnp.float32)},
        "b": {"kernel": jnp.asarray(rng.standard_normal((5, 7, 9)), jnp.float32)},
        "c": {"kernel": jnp.asarray(rng.standard_normal((64, 8)), jnp.bfloat16)},
        "bias": jnp.zeros(3),
    }


def _reference(params, amount, priors=None):
    leaves = [params["a"]["kernel"], params["b"]["kernel"], params["c"]["kernel"]]
    flat = np.concatenate([np.abs(np.asarray(x.astype(jnp.float32))).ravel() for x in leaves])
    if priors is None:
        alive = np.ones(flat.shape, bool)
    else:
        alive = np.concatenate(
            [np.broadcast_to(np.asarray(p), x.shape).ravel() for p, x in zip(priors, leaves)]
        )
    k = amount if isinstance(amount, int) else round(amount * int(alive.sum()))
    kept = alive & ~ref_lowest(flat, alive, k)
    out, start = [], 0
    for x in leaves:
        out.append(kept[start : start + x.size].reshape(x.shape))
        start += x.size
    return out


@pytest.mark.parametrize("amount", [0, 1, 0.3, 0.5, 1.0, 500])
def test_l1_matches_numpy_reference(amount):
    p = tree()
    m = jp.global_unstructured(p, amount)
    for got, want in zip(
        [m["a"]["kernel"], m["b"]["kernel"], m["c"]["kernel"]], _reference(p, amount)
    ):
        np.testing.assert_array_equal(np.asarray(got), want)
    assert m["bias"].shape == ()


def test_l1_with_prior_masks_matches_reference(key):
    p = tree(1)
    masks = jp.prune(p, "random_structured", key=key, amount=0.5)
    m = jp.global_unstructured(p, 0.4, masks=masks)
    priors = [masks["a"]["kernel"], masks["b"]["kernel"], masks["c"]["kernel"]]
    for got, want in zip(
        [m["a"]["kernel"], m["b"]["kernel"], m["c"]["kernel"]], _reference(p, 0.4, priors)
    ):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_equals_torch_global_unstructured_with_priors():
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((12, 10)).astype(np.float32)
    w2 = rng.standard_normal((6, 4, 3)).astype(np.float32)
    m1, m2 = torch.nn.Module(), torch.nn.Module()
    m1.weight = torch.nn.Parameter(torch.from_numpy(w1.copy()))
    m2.weight = torch.nn.Parameter(torch.from_numpy(w2.copy()))
    tprune.l1_unstructured(m1, "weight", amount=0.3)
    params = {"m1": jnp.asarray(w1), "m2": jnp.asarray(w2)}
    masks = {"m1": jp.l1_unstructured(w1, 0.3), "m2": jnp.ones((), bool)}
    for amount in (0.25, 20):
        tprune.global_unstructured(
            [(m1, "weight"), (m2, "weight")], pruning_method=tprune.L1Unstructured, amount=amount
        )
        masks = jp.global_unstructured(params, amount, masks=masks)
        np.testing.assert_array_equal(np.asarray(masks["m1"]), m1.weight_mask.numpy() == 1)
        np.testing.assert_array_equal(np.asarray(masks["m2"]), m2.weight_mask.numpy() == 1)


def test_random_global_exact_count_and_determinism(key):
    p = tree()
    m = jp.global_unstructured(p, 0.5, method="random", key=key)
    total = 600 + 315 + 512
    pruned = sum(int((~m[n]["kernel"]).sum()) for n in "abc")
    assert pruned == round(0.5 * total)
    again = jp.global_unstructured(p, 0.5, method="random", key=key)
    for n in "abc":
        np.testing.assert_array_equal(m[n]["kernel"], again[n]["kernel"])
    # Roughly proportional to the leaves' sizes.
    assert abs(int((~m["a"]["kernel"]).sum()) - 300) < 60


def test_traced_amount_under_jit():
    p = tree()
    traces = []

    @jax.jit
    def f(amount):
        traces.append(1)
        return jp.global_unstructured(p, amount)

    for a in (0.2, 0.6):
        m = f(jnp.float32(a))
        pruned = sum(int((~m[n]["kernel"]).sum()) for n in "abc")
        assert pruned == round(a * 1427)
    assert len(traces) == 1


def test_errors(key):
    p = tree()
    with pytest.raises(ValueError, match="not a global method"):
        jp.global_unstructured(p, 0.5, method="l2")
    with pytest.raises(TypeError, match="key is required"):
        jp.global_unstructured(p, 0.5, method="random")
    with pytest.raises(TypeError, match="takes no key"):
        jp.global_unstructured(p, 0.5, key=key)
    with pytest.raises(ValueError, match="amount=5000 should be smaller"):
        jp.global_unstructured(p, 5000)
    with pytest.raises(ValueError, match="selected no leaf"):
        jp.global_unstructured(p, 0.5, where="zzz")
    with pytest.raises(AssertionError, match="a/kernel: importance_scores should have"):
        jp.global_unstructured(p, 0.5, importance_scores={"a": {"kernel": jnp.ones(3)}})
