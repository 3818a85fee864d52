import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_forward, assert_same_state, twins

from torch_compat import prune as cp


@pytest.mark.parametrize("kind", ["linear", "conv2d", "embedding"])
def test_identity(kind):
    a, b = twins(kind)
    tp.identity(a, "weight")
    cp.identity(b, "weight")
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
def test_custom_from_mask_then_other_methods(kind):
    a, b = twins(kind)
    torch.manual_seed(0)
    mask = (torch.rand_like(a.weight) > 0.3).to(torch.float32)
    tp.custom_from_mask(a, "weight", mask=mask)
    cp.custom_from_mask(b, "weight", mask=mask)
    assert_same_state(a, b)
    tp.custom_from_mask(a, "bias", mask=torch.arange(a.bias.numel()) % 2)
    cp.custom_from_mask(b, "bias", mask=torch.arange(b.bias.numel()) % 2)
    assert_same_state(a, b)
    tp.l1_unstructured(a, "weight", amount=0.5)
    cp.l1_unstructured(b, "weight", amount=0.5)
    mask2 = torch.ones_like(a.weight)
    mask2.view(-1)[::3] = 0
    tp.custom_from_mask(a, "weight", mask=mask2)
    cp.custom_from_mask(b, "weight", mask=mask2)
    assert_same_state(a, b)
    assert_same_forward(a, b, kind)


def test_custom_mask_of_the_wrong_shape_raises_assertion_error():
    a, b = twins("linear")
    with pytest.raises(AssertionError):
        tp.custom_from_mask(a, "weight", mask=torch.ones(3))
    with pytest.raises(AssertionError, match="must match self.mask shape"):
        cp.custom_from_mask(b, "weight", mask=torch.ones(3))


def test_soft_masks_keep_their_values_as_in_torch():
    # torch multiplies custom masks in; later unstructured rounds treat only entries equal to
    # 1 as unpruned, structured ones every channel with a nonzero value.
    a, b = twins("conv2d")
    torch.manual_seed(0)
    soft = torch.rand_like(a.weight)
    soft[0] = 1.0
    for lib, m in ((tp, a), (cp, b)):
        lib.custom_from_mask(m, "weight", mask=soft)
        lib.l1_unstructured(m, "weight", amount=5)
        torch.manual_seed(1)
        lib.random_structured(m, "weight", amount=2, dim=0)
    assert_same_state(a, b)
    assert_same_forward(a, b, "conv2d")
