"""Both of torch_compat's paths against torch: small tensors (padded to a size bucket, as
NumPy arrays) and large ones (at their own size, by DLPack).

Every other parity test runs small tensors; here the same rounds run with the size limit
at 0 (every tensor takes the large path) and on a layer above the limit."""

import math

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state, run_both

from torch_compat import _masks
from torch_compat import prune as cp

ROUNDS = [
    ("random_unstructured", {"amount": 0.2}),
    ("l1_unstructured", {"amount": 7}),
    ("ln_structured", {"amount": 0.5, "n": 2, "dim": 1}),
    ("random_structured", {"amount": 1, "dim": 0}),
    ("ln_structured", {"amount": 0.25, "n": math.inf, "dim": 0}),
    ("random_unstructured", {"amount": 0.5}),
    ("l1_unstructured", {"amount": 0.3}),
]


def _pair(make, dtype):
    torch.manual_seed(0)
    a = make().to(dtype)
    torch.manual_seed(0)
    b = make().to(dtype)
    b.load_state_dict(a.state_dict())
    return a, b


def _rounds(a, b):
    for r, (fn, kwargs) in enumerate(ROUNDS):
        run_both(a, b, fn, "weight", seed=r, **kwargs)
        if "unstructured" in fn:
            run_both(a, b, fn, "bias", seed=100 + r, **{**kwargs, "amount": 0.25})
        assert_same_state(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("small", [True, False], ids=["bucketed", "own-size"])
def test_rounds_on_both_paths(monkeypatch, small, dtype):
    if not small:
        monkeypatch.setattr(_masks, "SMALL", 0)
    a, b = _pair(lambda: torch.nn.Conv2d(6, 10, 3), dtype)
    _rounds(a, b)


def test_a_layer_above_the_limit():
    a, b = _pair(lambda: torch.nn.Linear(300, 240), torch.float32)
    assert a.weight.numel() > _masks.SMALL
    _rounds(a, b)


@pytest.mark.parametrize("small", [True, False], ids=["bucketed", "own-size"])
def test_global_and_the_one_dimensional_container_on_both_paths(monkeypatch, small):
    if not small:
        monkeypatch.setattr(_masks, "SMALL", 0)
    a, b = _pair(
        lambda: torch.nn.Sequential(torch.nn.Linear(9, 7), torch.nn.Linear(7, 3)), torch.float32
    )
    run_both(a[0], b[0], "l1_unstructured", "bias", amount=2)
    run_both(a[0], b[0], "ln_structured", "bias", amount=0.5, n=1, dim=0)  # torch's 1-D quirk
    for seed, method in enumerate((tp.L1Unstructured, tp.RandomUnstructured)):
        for lib, mods in ((tp, a), (cp, b)):
            torch.manual_seed(seed)
            params = [(mods[0], "weight"), (mods[0], "bias"), (mods[1], "weight")]
            lib.global_unstructured(params, method, amount=0.3)
        assert_same_state(a, b)


@pytest.mark.parametrize("units", [1, 1023, 1024, 1025, 8192, 8193])
def test_bucket_edges(units):
    # A tensor that fills its bucket exactly, one entry below and one above.
    assert _masks.bucket(units) >= units
    a, b = _pair(lambda: torch.nn.Linear(units, 1), torch.float32)
    run_both(a, b, "l1_unstructured", "weight", amount=0.5)
    run_both(a, b, "random_unstructured", "weight", amount=0.5)
    run_both(a, b, "ln_structured", "weight", amount=0.5, n=1, dim=1)
    assert_same_state(a, b)
