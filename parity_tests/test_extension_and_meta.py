"""torch's extension point (a compute_mask of one's own), patched classes, meta-device
skeletons and torch's own type and index errors, as torch behaves."""

from unittest import mock

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state, twins

from torch_compat import prune as cp


def every_other(base):
    class EveryOther(base):
        """Prunes every other entry still kept, whatever the amount."""

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask.view(-1)[::2] = 0
            return mask

    return EveryOther


def test_a_subclass_with_its_own_compute_mask_is_called():
    a, b = twins("linear")
    every_other(tp.L1Unstructured).apply(a, "weight", amount=0.1)
    every_other(cp.L1Unstructured).apply(b, "weight", amount=0.1)
    assert_same_state(a, b)
    assert int((b.weight_mask == 0).sum()) == (b.weight.numel() + 1) // 2
    # A later built-in round works on top of it, in a container, as in torch.
    tp.l1_unstructured(a, "weight", amount=3)
    cp.l1_unstructured(b, "weight", amount=3)
    assert_same_state(a, b)


def test_a_subclass_calling_the_built_in_compute_mask_gets_torch_s_mask():
    class Logged(cp.L1Unstructured):
        calls = 0

        def compute_mask(self, t, default_mask):
            Logged.calls += 1
            return super().compute_mask(t, default_mask)

    a, b = twins("conv2d")
    tp.L1Unstructured.apply(a, "weight", amount=0.4)
    Logged.apply(b, "weight", amount=0.4)
    assert Logged.calls == 1
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert torch.equal(a.weight_orig, b.weight_orig) and torch.equal(a.weight, b.weight)


@pytest.mark.parametrize("name", ["weight", "bias"])
@pytest.mark.parametrize("kind", ["linear", "conv3d"])
def test_torch_s_rollback_test_with_torch_compat(kind, name):
    # torch's test_pruning_rollback, with the import swapped: the patched compute_mask runs,
    # raises, and the module is left as it was.
    a, _ = twins(kind)
    with mock.patch("torch_compat.prune.L1Unstructured.compute_mask") as compute_mask:
        compute_mask.side_effect = Exception("HA!")
        with pytest.raises(Exception, match="HA!"):
            cp.l1_unstructured(a, name=name, amount=0.9)
        assert compute_mask.called
    assert name in dict(a.named_parameters())
    assert name + "_mask" not in dict(a.named_buffers())
    assert name + "_orig" not in dict(a.named_parameters())
    cp.l1_unstructured(a, name=name, amount=0.9)  # the class is itself again
    assert int((getattr(a, name + "_mask") == 0).sum()) == round(0.9 * getattr(a, name).numel())


CALLS = [
    ("identity", {}),
    ("l1_unstructured", {"amount": 0.5}),
    ("random_unstructured", {"amount": 0.5}),
    ("random_structured", {"amount": 0.5, "dim": 0}),
    ("ln_structured", {"amount": 0.5, "n": 2, "dim": 0}),
]


@pytest.mark.parametrize("fn, kwargs", CALLS)
def test_meta_device_skeletons_load_a_pruned_state_dict(fn, kwargs):
    # The usual way to load a pruned checkpoint: prune a skeleton on meta, materialise it,
    # load the state_dict. torch_compat leaves the skeleton as torch does.
    torch.manual_seed(0)
    real = torch.nn.Linear(6, 4)
    getattr(tp, fn)(real, "weight", **kwargs)
    state = real.state_dict()
    skeletons = []
    for prune in (tp, cp):
        with torch.device("meta"):
            skeleton = torch.nn.Linear(6, 4)
        torch.manual_seed(1)
        getattr(prune, fn)(skeleton, "weight", **kwargs)
        after = torch.rand(1)  # the generator advanced as torch's own call advanced it
        mask = skeleton.weight_mask
        assert mask.device.type == "meta" and mask.shape == (4, 6)
        skeleton.to_empty(device="cpu")
        skeleton.load_state_dict(state)
        x = torch.randn(3, 6)
        assert torch.equal(skeleton(x), real(x))  # the hook recomputes the pruned weight
        assert torch.equal(skeleton.weight_mask, real.weight_mask)
        skeletons.append((skeleton, after))
    assert torch.equal(skeletons[0][1], skeletons[1][1])


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        ("l1_unstructured", {}),
        ("random_unstructured", {}),
        ("random_structured", {"dim": 0}),
    ],
)
def test_amount_true_is_a_type_error_where_torch_raises_one(fn, kwargs):
    a, b = twins("linear")
    with pytest.raises(TypeError):
        getattr(tp, fn)(a, "weight", amount=True, **kwargs)
    state = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(TypeError, match="not bool"):
        getattr(cp, fn)(b, "weight", amount=True, **kwargs)
    assert not cp.is_pruned(b)
    assert all(torch.equal(v, state[k]) for k, v in b.state_dict().items())


def test_amount_true_prunes_one_channel_in_ln_structured_as_in_torch():
    a, b = twins("linear")
    tp.ln_structured(a, "weight", amount=True, n=1, dim=0)
    cp.ln_structured(b, "weight", amount=True, n=1, dim=0)
    assert_same_state(a, b)


@pytest.mark.parametrize("dim", [1, 2, -2])
def test_a_structured_round_past_the_dims_of_a_pruned_1d_parameter_is_an_index_error(dim):
    a, b = twins("linear")
    tp.identity(a, "bias")
    cp.identity(b, "bias")
    with pytest.raises(IndexError) as ea:
        tp.ln_structured(a, "bias", amount=1, n=1, dim=dim)
    with pytest.raises(IndexError) as eb:
        cp.ln_structured(b, "bias", amount=1, n=1, dim=dim)
    assert str(ea.value) == str(eb.value)
    # The failed call changed nothing (torch's container may drop its hook first).
    assert cp.is_pruned(b) and torch.equal(b.bias_mask, torch.ones(5))
