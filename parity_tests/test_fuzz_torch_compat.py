"""Fuzzing torch_compat: every call gives a valid pruned module or raises one of torch's
exception types with a message and leaves the module exactly as it was; where torch succeeds
on a twin, the deterministic methods agree with it."""

import copy
import math

import jax
import torch
import torch.nn.utils.prune as tp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from parity_helpers import hook_summary

from torch_compat import prune as cp

DOCUMENTED = (TypeError, ValueError, IndexError, AttributeError, AssertionError, RuntimeError)

amounts = st.one_of(
    st.floats(0.0, 1.0),
    st.integers(0, 4),
    st.integers(-2, 80),
    st.sampled_from([float("nan"), 1.5, "0.3", None]),
)


def state(module):
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        hook_summary(module),
        sorted(module._parameters),
        sorted(module._buffers),
    )


def same_state(a, b):
    assert list(a[0]) == list(b[0])
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]) or (a[0][k].isnan() == b[0][k].isnan()).all()
    assert a[1:] == b[1:]


@st.composite
def calls(draw):
    fn = draw(
        st.sampled_from(
            [
                "random_unstructured",
                "l1_unstructured",
                "random_structured",
                "ln_structured",
                "custom_from_mask",
                "identity",
            ]
        )
    )
    name = draw(st.sampled_from(["weight", "weight", "bias", "nope"]))
    kwargs = {}
    if fn != "identity" and fn != "custom_from_mask":
        kwargs["amount"] = draw(amounts)
    if fn in ("random_structured", "ln_structured"):
        kwargs["dim"] = draw(st.integers(-4, 3))
    if fn == "ln_structured":
        kwargs["n"] = draw(st.sampled_from([1, 2, math.inf, -math.inf, "fro", "nuc", 0.5]))
    if fn.startswith("random") and draw(st.booleans()):
        kwargs["key"] = draw(st.sampled_from([jax.random.key(1), 5]))
    if fn == "custom_from_mask":
        kwargs["mask"] = draw(st.sampled_from(["right", "soft", "wrong"]))
    if fn in ("l1_unstructured", "ln_structured") and draw(st.booleans()):
        kwargs["importance_scores"] = draw(st.sampled_from(["right", "wrong"]))
    return fn, name, kwargs


def _materialize(module, name, kwargs):
    out = dict(kwargs)
    shape = getattr(module, name).shape if hasattr(module, name) else (1,)
    for k in ("mask", "importance_scores"):
        if k in out:
            if out[k] == "wrong":
                out[k] = torch.rand(3, 3, 3)
            elif k == "mask" and out[k] == "right":
                out[k] = (torch.rand(shape) > 0.4).float()
            else:  # scores, or a soft mask: torch multiplies its values in
                out[k] = torch.rand(shape)
    return out


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.sampled_from(["linear", "conv"]),
    st.lists(calls(), min_size=1, max_size=3),
    st.integers(0, 3),
)
def test_calls_are_valid_or_change_nothing(kind, plan, seed):
    torch.manual_seed(seed)
    module = torch.nn.Linear(5, 4) if kind == "linear" else torch.nn.Conv2d(2, 3, 2)
    twin = copy.deepcopy(module)
    soft = False
    for fn, name, kwargs in plan:
        soft = soft or kwargs.get("mask") == "soft"
        args = _materialize(module, name, kwargs)
        before = state(module)
        torch.manual_seed(seed)
        try:
            getattr(cp, fn)(module, name, **args)
        except DOCUMENTED as e:
            assert str(e)
            event(f"{fn}: {type(e).__name__}")
            same_state(before, state(module))
            continue
        event(f"{fn}: pruned")
        mask = getattr(module, name + "_mask")
        assert mask.shape == getattr(module, name + "_orig").shape
        if not soft:
            assert bool(((mask == 0) | (mask == 1)).all())
        deterministic = fn in ("l1_unstructured", "ln_structured", "identity", "custom_from_mask")
        if deterministic and "key" not in args:
            try:
                getattr(tp, fn)(twin, name, **args)
            except Exception:
                twin = copy.deepcopy(module)  # torch failed (its hook may be gone): resync
                continue
            assert torch.equal(getattr(twin, name + "_mask"), mask)
        else:
            twin = copy.deepcopy(module)
