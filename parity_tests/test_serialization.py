import copy
import io
import pickle

import jax
import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_forward, assert_same_state, twins

from torch_compat import prune as cp


def pruned_pair():
    a, b = twins("conv2d")
    for lib, m in ((tp, a), (cp, b)):
        torch.manual_seed(0)
        lib.random_structured(m, "weight", amount=0.5, dim=0)
        lib.l1_unstructured(m, "weight", amount=0.25)
        lib.random_unstructured(m, "bias", amount=2)
    return a, b


@pytest.mark.parametrize("roundtrip", ["deepcopy", "pickle", "torch.save"])
def test_roundtrips_keep_state_and_hooks(roundtrip):
    a, b = pruned_pair()
    if roundtrip == "deepcopy":
        # torch cannot deep-copy a module it pruned (module.weight is not a graph leaf);
        # torch_compat can. Compare the copy with torch's original instead.
        with pytest.raises(RuntimeError, match="graph leaves"):
            copy.deepcopy(a)
        a2, b2 = a, copy.deepcopy(b)
        assert b2.weight_orig is not b.weight_orig
    elif roundtrip == "pickle":
        a2, b2 = pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b))
    else:
        out = []
        for m in (a, b):
            buf = io.BytesIO()
            torch.save(m, buf)
            buf.seek(0)
            out.append(torch.load(buf, weights_only=False))
        a2, b2 = out
    assert_same_state(a2, b2)
    assert_same_state(b, b2)
    assert_same_forward(a2, b2, "conv2d")
    with torch.no_grad():
        b2(torch.randn(1, 3, 8, 7))
    assert_same_state(b, copy.deepcopy(b2))  # also after a forward pass
    # The restored modules keep pruning the same way.
    for lib, m in ((tp, a2), (cp, b2)):
        torch.manual_seed(9)
        lib.random_structured(m, "weight", amount=1, dim=1)
    assert_same_state(a2, b2)


def test_keyed_methods_pickle():
    m = torch.nn.Linear(6, 4)
    cp.random_structured(m, "weight", amount=0.5, dim=0, key=jax.random.key(3))
    m2 = pickle.loads(pickle.dumps(m))
    assert torch.equal(m2.weight_mask, m.weight_mask)
    cp.random_structured(m2, "weight", amount=1, dim=0, key=jax.random.key(4))
    cp.random_structured(m, "weight", amount=1, dim=0, key=jax.random.key(4))
    assert torch.equal(m2.weight_mask, m.weight_mask)


@pytest.mark.parametrize("direction", ["torch->compat", "compat->torch"])
def test_state_dict_both_ways(direction):
    a, b = pruned_pair()
    src, dst_lib = (a, cp) if direction == "torch->compat" else (b, tp)
    fresh, _ = twins("conv2d", seed=5)
    # A module pruned the same way (any mask) has the same keys and accepts the state.
    torch.manual_seed(1)
    dst_lib.random_structured(fresh, "weight", amount=0.5, dim=0)
    dst_lib.random_unstructured(fresh, "bias", amount=2)
    fresh.load_state_dict(src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)
    x = torch.randn(2, 3, 8, 7)
    with torch.no_grad():
        assert torch.equal(fresh(x), src(x))
