"""1 to 4 rounds mixing methods on a small transformer block, all of its weights."""

import copy
import math

import pytest
import torch
from parity_helpers import assert_same_state, run_both

PLANS = [
    [("l1_unstructured", {"amount": 0.3})],
    [("random_structured", {"amount": 0.25, "dim": 0}), ("l1_unstructured", {"amount": 0.5})],
    [
        ("random_unstructured", {"amount": 0.2}),
        ("ln_structured", {"amount": 0.5, "n": 2, "dim": 1}),
        ("random_structured", {"amount": 1, "dim": 0}),
    ],
    [
        ("ln_structured", {"amount": 2, "n": 1, "dim": 0}),
        ("random_unstructured", {"amount": 7}),
        ("ln_structured", {"amount": 0.5, "n": math.inf, "dim": 1}),
        ("l1_unstructured", {"amount": 0.5}),
    ],
]

NAMES = [
    ("self_attn", "in_proj_weight"),
    ("self_attn.out_proj", "weight"),
    ("linear1", "weight"),
    ("linear2", "weight"),
    ("linear1", "bias"),
]


def block():
    return torch.nn.TransformerEncoderLayer(
        d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
    ).eval()


@pytest.mark.parametrize("plan", PLANS, ids=[f"{len(p)}-rounds" for p in PLANS])
def test_transformer_block(plan):
    torch.manual_seed(0)
    a = block()
    b = copy.deepcopy(a)
    for r, (fn, kwargs) in enumerate(plan):
        for i, (path, name) in enumerate(NAMES):
            if name == "bias" and fn.endswith("structured") and "unstructured" not in fn:
                continue
            run_both(
                a.get_submodule(path),
                b.get_submodule(path),
                fn,
                name,
                seed=10 * r + i,
                **kwargs,
            )
        assert_same_state(a, b)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
