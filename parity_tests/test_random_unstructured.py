import pytest
import torch
from parity_helpers import MODULES, assert_same_forward, assert_same_state, run_both, twins

AMOUNTS = [0, 1, 0.0, 0.3, 0.5, 1.0]


@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.parametrize("amount", AMOUNTS)
def test_first_round_bit_identical(kind, amount):
    a, b = twins(kind)
    run_both(
        a,
        b,
        "random_unstructured",
        "weight",
        amount=amount,
    )
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


@pytest.mark.parametrize("kind", list(MODULES))
def test_full_int_amount(kind):
    a, b = twins(kind)
    n = a.weight.numel()
    run_both(
        a,
        b,
        "random_unstructured",
        "weight",
        amount=n,
    )
    assert_same_state(a, b)
    assert int(b.weight_mask.sum()) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    a, b = twins("linear", dtype=dtype)
    run_both(
        a,
        b,
        "random_unstructured",
        "weight",
        amount=0.4,
    )
    assert_same_state(a, b)
    assert b.weight_mask.dtype == dtype


@pytest.mark.parametrize("rounds", [2, 3, 4])
def test_rounds_and_bias(rounds):
    a, b = twins("conv2d")
    for r in range(rounds):
        amount = [0.3, 4, 0.5, 0.25][r]
        name = "bias" if r == 1 else "weight"
        run_both(
            a,
            b,
            "random_unstructured",
            name,
            amount=amount,
            seed=r,
        )
        assert_same_state(a, b)
    assert_same_forward(a, b, "conv2d")
