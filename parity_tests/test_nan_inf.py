"""NaN and infinities in weights or scores: torch, torch_compat and jaxprune agree.

torch's ``topk`` orders NaN above every number; jaxprune's selection does the same (NaN is
pruned last, +inf just before it), so the three agree wherever torch's choice is defined.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tp

import jaxprune as jp
from torch_compat import prune as cp


def weights():
    w = torch.from_numpy(np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32))
    w[0, 3] = float("nan")
    w[2, 1] = float("inf")
    w[2, 5] = -float("inf")
    w[3, 3] = float("nan")
    return w


def modules():
    a, b = torch.nn.Linear(7, 5), torch.nn.Linear(7, 5)
    with torch.no_grad():
        a.weight.copy_(weights())
        b.weight.copy_(weights())
    return a, b


@pytest.mark.parametrize("amount", [1, 10, 31, 33, 35, 0.5])
def test_l1_with_nan_and_inf(amount):
    a, b = modules()
    tp.l1_unstructured(a, "weight", amount=amount)
    cp.l1_unstructured(b, "weight", amount=amount)
    assert torch.equal(a.weight_mask, b.weight_mask)
    mask = jp.l1_unstructured(jnp.asarray(weights().numpy()), amount)
    np.testing.assert_array_equal(np.asarray(mask), b.weight_mask.numpy() == 1)
    if amount in (31, 33):  # NaN entries are the last to go
        assert bool(mask[0, 3]) and bool(mask[3, 3])


@pytest.mark.parametrize("n", [1, 2, math.inf, -math.inf])
@pytest.mark.parametrize("dim", [0, 1])
def test_ln_with_nan_and_inf(n, dim):
    a, b = modules()
    tp.ln_structured(a, "weight", amount=2, n=n, dim=dim)
    cp.ln_structured(b, "weight", amount=2, n=n, dim=dim)
    assert torch.equal(a.weight_mask, b.weight_mask)
    mask = jp.ln_structured(jnp.asarray(weights().numpy()), 2, n, dim)
    np.testing.assert_array_equal(np.broadcast_to(mask, (5, 7)), b.weight_mask.numpy() == 1)


def test_nan_importance_scores():
    a, b = modules()
    scores = torch.rand(5, 7)
    scores[1, 1] = float("nan")
    tp.l1_unstructured(a, "weight", amount=34, importance_scores=scores)
    cp.l1_unstructured(b, "weight", amount=34, importance_scores=scores)
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert b.weight_mask[1, 1] == 1  # the only survivor


def test_random_methods_ignore_values():
    for lib, m in zip((tp, cp), modules()):
        torch.manual_seed(0)
        lib.random_unstructured(m, "weight", amount=0.5)
        torch.manual_seed(1)
        lib.random_structured(m, "weight", amount=2, dim=0)
    a, b = [m for m in modules()]
    for lib, m in ((tp, a), (cp, b)):
        torch.manual_seed(0)
        lib.random_unstructured(m, "weight", amount=0.5)
    assert torch.equal(a.weight_mask, b.weight_mask)
    # The pruned weight is mask * weight_orig in both: NaN * 0 stays NaN, as torch has it.
    assert torch.equal(a.weight.isnan(), b.weight.isnan())
