import pytest
import torch
from parity_helpers import assert_same_forward, assert_same_state, run_both, twins

DIMS = {
    "linear": [0, 1, -1, -2],
    "conv1d": [0, 1, 2, -1],
    "conv2d": [0, 1, 3, -3],
    "conv3d": [0, 1, 4, -1],
    "embedding": [0, 1, -1],
}
CASES = [(k, d) for k, ds in DIMS.items() for d in ds]


@pytest.mark.parametrize("kind,dim", CASES)
@pytest.mark.parametrize("amount", [0, 1, 0.0, 0.5, 1.0, 0.3])
def test_first_round_bit_identical(kind, dim, amount):
    a, b = twins(kind)
    run_both(
        a,
        b,
        "random_structured",
        "weight",
        amount=amount,
        dim=dim,
    )
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


@pytest.mark.parametrize("kind,dim", CASES[::2])
def test_full_int_amount(kind, dim):
    a, b = twins(kind)
    n = a.weight.shape[dim]
    run_both(
        a,
        b,
        "random_structured",
        "weight",
        amount=n,
        dim=dim,
    )
    assert_same_state(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    a, b = twins("conv2d", dtype=dtype)
    run_both(
        a,
        b,
        "random_structured",
        "weight",
        amount=0.5,
        dim=0,
    )
    assert_same_state(a, b)


@pytest.mark.parametrize("rounds", [2, 3, 4])
def test_rounds(rounds):
    a, b = twins("conv2d")
    for r in range(rounds):
        amount, dim = [(0.3, 0), (2, 1), (0.5, 0), (1, -1)][r]
        run_both(
            a,
            b,
            "random_structured",
            "weight",
            amount=amount,
            dim=dim,
            seed=r,
        )
        assert_same_state(a, b)
    assert_same_forward(a, b, "conv2d")


def test_one_dimensional_parameter_already_pruned_is_one_channel():
    # torch's container treats an already-pruned 1-D tensor as a (1, N) slice.
    a, b = twins("linear")
    run_both(a, b, "random_unstructured", "bias", amount=0.4, seed=0)
    for amount, dim, seed in [(0.5, -1, 1), (1, 0, 2)]:
        run_both(a, b, "random_structured", "bias", amount=amount, dim=dim, seed=seed)
        assert_same_state(a, b)
