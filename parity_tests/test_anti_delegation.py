"""torch_compat selects with JAX: with torch's selection ops disabled it still matches torch.

LnStructured's channel scores are the one thing torch computes: torch_compat makes the same
norm call torch's method makes (bit parity where float32 reductions differ), and the
selection among them runs in JAX."""

import math

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state, twins

from torch_compat import prune as cp

PLAN = [
    ("random_unstructured", ("weight",), {"amount": 0.3}),
    ("l1_unstructured", ("weight",), {"amount": 0.2}),
    ("random_structured", ("weight",), {"amount": 0.5, "dim": 0}),
    ("ln_structured", ("weight",), {"amount": 1, "n": 2, "dim": 1}),
    ("ln_structured", ("weight",), {"amount": 1, "n": math.inf, "dim": 0}),
]


def _refuse(*args, **kwargs):
    raise AssertionError("torch selection op called")


def test_masks_without_torch_selection_ops(monkeypatch):
    a, b = twins("conv2d")
    for i, (fn, args, kwargs) in enumerate(PLAN):
        torch.manual_seed(i)
        getattr(tp, fn)(a, *args, **kwargs)
    norms = []
    real_norm = torch.norm

    def counted_norm(*args, **kwargs):
        norms.append(kwargs.get("p"))
        return real_norm(*args, **kwargs)

    with monkeypatch.context() as mp:
        for name in ("kthvalue", "topk", "sort", "argsort", "msort"):
            mp.setattr(torch, name, _refuse)
            mp.setattr(torch.Tensor, name, _refuse)
        mp.setattr(torch, "norm", counted_norm)
        with pytest.raises(AssertionError, match="torch selection op called"):
            torch.topk(torch.ones(3), 1)  # the patch is in force
        for i, (fn, args, kwargs) in enumerate(PLAN):
            torch.manual_seed(i)
            getattr(cp, fn)(b, *args, **kwargs)
        torch.manual_seed(0)
        cp.global_unstructured([(b, "weight"), (b, "bias")], cp.L1Unstructured, amount=5)
    assert norms == [2, math.inf]  # the scores of the two ln_structured rounds, no more
    torch.manual_seed(0)
    tp.global_unstructured([(a, "weight"), (a, "bias")], tp.L1Unstructured, amount=5)
    assert_same_state(a, b)
