import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import MODULES, assert_same_forward, assert_same_state, run_both, twins

from torch_compat import prune as cp


@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.parametrize("amount", [0, 1, 0.0, 0.3, 0.5, 1.0, 7])
def test_first_round_bit_identical(kind, amount):
    a, b = twins(kind)
    run_both(
        a,
        b,
        "l1_unstructured",
        "weight",
        amount=amount,
    )
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
def test_importance_scores(kind):
    a, b = twins(kind)
    torch.manual_seed(5)
    scores = torch.randn_like(a.weight)
    tp.l1_unstructured(a, "weight", amount=0.4, importance_scores=scores)
    cp.l1_unstructured(b, "weight", amount=0.4, importance_scores=scores)
    assert_same_state(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    a, b = twins("conv1d", dtype=dtype)
    # Half-precision weights tie often; make them distinct so torch's own choice is defined.
    with torch.no_grad():
        for m in (a, b):
            m.weight.copy_(torch.linspace(-1, 1, m.weight.numel()).view_as(m.weight).to(dtype))
    tp.l1_unstructured(a, "weight", amount=0.3)
    cp.l1_unstructured(b, "weight", amount=0.3)
    assert_same_state(a, b)


def test_rounds():
    a, b = twins("conv3d")
    for amount in (0.2, 10, 0.5, 0.5):
        tp.l1_unstructured(a, "weight", amount=amount)
        cp.l1_unstructured(b, "weight", amount=amount)
        assert_same_state(a, b)
    assert_same_forward(a, b, "conv3d")
