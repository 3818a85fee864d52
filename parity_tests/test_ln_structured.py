import math

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_forward, assert_same_state, run_both, twins

from torch_compat import prune as cp

NORMS = [1, 2, 3, 0.5, -1, math.inf, -math.inf, "fro"]
CASES = [
    ("linear", 0),
    ("linear", -1),
    ("conv1d", 1),
    ("conv2d", 0),
    ("conv2d", -1),
    ("conv3d", 1),
    ("embedding", 1),
]


@pytest.mark.parametrize("n", NORMS)
@pytest.mark.parametrize("kind,dim", CASES)
@pytest.mark.parametrize("amount", [1, 0.5, 0.3])
def test_every_norm_first_round(n, kind, dim, amount):
    a, b = twins(kind)
    fa = lambda m: tp.ln_structured(m, "weight", amount=amount, n=n, dim=dim)  # noqa: E731
    fb = lambda m: cp.ln_structured(m, "weight", amount=amount, n=n, dim=dim)  # noqa: E731
    if n == "fro" and a.weight.dim() > 3:
        with pytest.raises(RuntimeError) as ea:
            fa(a)
        with pytest.raises(RuntimeError) as eb:
            fb(b)
        assert str(ea.value) == str(eb.value)
        return
    fa(a)
    fb(b)
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


def test_nuclear_norm_where_torch_computes_it():
    a, b = twins("conv1d")  # (4, 3, 3): two reduced axes
    tp.ln_structured(a, "weight", amount=2, n="nuc", dim=0)
    cp.ln_structured(b, "weight", amount=2, n="nuc", dim=0)
    assert_same_state(a, b)
    a, b = twins("linear")  # one reduced axis: torch refuses
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        tp.ln_structured(a, "weight", amount=2, n="nuc", dim=0)
    with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
        cp.ln_structured(b, "weight", amount=2, n="nuc", dim=0)


def test_importance_scores_and_rounds():
    a, b = twins("conv2d")
    torch.manual_seed(3)
    scores = torch.rand_like(a.weight)
    tp.ln_structured(a, "weight", amount=0.5, n=1, dim=0, importance_scores=scores)
    cp.ln_structured(b, "weight", amount=0.5, n=1, dim=0, importance_scores=scores)
    assert_same_state(a, b)
    for amount, n, dim in [(1, 2, 0), (0.5, math.inf, 1)]:
        run_both(
            a,
            b,
            "ln_structured",
            "weight",
            amount=amount,
            n=n,
            dim=dim,
        )
        assert_same_state(a, b)
    assert_same_forward(a, b, "conv2d")


def _linear_with(weight):
    m = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        m.weight.copy_(weight)
    return m


def test_norms_that_differ_only_in_float32_rounding_order_as_torch_orders_them():
    # Exact L1 norms: 2**24 + 32 and 2**24 + 2. Summed in float32, torch's reduction gives
    # channel 0 the smaller one; a different reduction order gives it the larger one. The
    # scores are torch's own norm call, so torch_compat prunes the channel torch prunes.
    w = torch.tensor([[2.0**24] + [1.0] * 32, [2.0**24 + 2] + [0.0] * 32])
    want = tp._compute_norm(w, 1, 0)
    for first in (None, "identity"):
        a, b = _linear_with(w), _linear_with(w)
        if first:
            tp.identity(a, "weight")
            cp.identity(b, "weight")
        tp.ln_structured(a, "weight", amount=1, n=1, dim=0)
        cp.ln_structured(b, "weight", amount=1, n=1, dim=0)
        assert_same_state(a, b)
        pruned = int(want.argmin())
        assert a.weight_mask[pruned].eq(0).all() and b.weight_mask[pruned].eq(0).all()


def test_close_channel_norms_after_an_unstructured_round_match_torch():
    # BERT-like rows whose L1 norms after l1_unstructured(0.2) differ in the last bits:
    # the channel order is torch's, bit for bit, over several seeds.
    for seed in range(3):
        torch.manual_seed(seed)
        w = torch.randn(64, 768) * 0.02 + 47.045 / 768
        a, b = _linear_with(w), _linear_with(w)
        for m, p in ((a, tp), (b, cp)):
            p.l1_unstructured(m, "weight", amount=0.2)
            p.ln_structured(m, "weight", amount=0.5, n=1, dim=0)
        assert_same_state(a, b)
