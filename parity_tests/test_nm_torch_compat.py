"""torch_compat's N:M methods (beyond torch's list): the Flax twin's mask, transposed;
module state as torch's methods leave it; mixed with torch's own classes on one parameter;
torch's generator or a JAX key; refusals and rollback."""

import copy

import jax
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tp

import jaxprune as jp
from torch_compat import prune as cp


def _flax(t):
    """A torch weight in Flax's layout: (out, in) -> (in, out); (out, in, kh, kw) ->
    (kh, kw, in, out)."""
    a = t.detach().numpy()
    return a.T if a.ndim == 2 else np.transpose(a, (2, 3, 1, 0))


def _torch(a, ndim):
    return a.T if ndim == 2 else np.transpose(a, (3, 2, 0, 1))


@pytest.mark.parametrize("make", [lambda: torch.nn.Linear(16, 6), lambda: torch.nn.Conv2d(8, 4, 3)])
def test_the_flax_twin_gets_the_same_mask_transposed(make):
    torch.manual_seed(0)
    module = make()
    w = module.weight.detach().clone()
    cp.nm_unstructured(module, "weight", 2, 4)
    twin = np.asarray(jp.nm_unstructured(_flax(w), 2, 4))  # dim=-2: the input axis
    np.testing.assert_array_equal(
        module.weight_mask.numpy(), _torch(twin, w.dim()).astype(np.float32)
    )
    assert module.weight_mask.dtype == w.dtype
    assert sorted(module.state_dict()) == ["bias", "weight_mask", "weight_orig"]
    torch.testing.assert_close(module.weight, w * module.weight_mask, rtol=0, atol=0)
    assert jp.is_nm(module.weight.detach().numpy(), 2, 4, dim=1)
    key = jax.random.key(5)
    other = make()
    cp.random_nm(other, "weight", 1, 4, key=key)
    twin = np.asarray(jp.random_nm(key, _flax(other.weight_orig), 1, 4))
    np.testing.assert_array_equal(other.weight_mask.numpy().astype(bool), _torch(twin, w.dim()))


def test_rounds_mixed_with_torch_s_own_classes_on_one_parameter():
    torch.manual_seed(1)
    lin = torch.nn.Linear(16, 8)
    tp.l1_unstructured(lin, "weight", amount=20)  # torch's class first
    before = lin.weight_mask.clone()
    cp.nm_unstructured(lin, "weight", 2, 4)  # then N:M among what is left
    hook = next(iter(lin._forward_pre_hooks.values()))
    assert isinstance(hook, tp.PruningContainer) and len(hook._pruning_methods) == 2
    mask = lin.weight_mask
    assert bool(((mask == 1) <= (before == 1)).all())  # nothing revived
    groups = mask.reshape(8, 4, 4).sum(dim=2)
    alive = before.reshape(8, 4, 4).sum(dim=2)
    assert torch.equal(groups, torch.minimum(alive, torch.tensor(2.0)))
    tp.random_unstructured(lin, "weight", amount=3)  # torch's class on top of ours
    assert int(lin.weight_mask.sum()) == int(mask.sum()) - 3
    cp.remove(lin, "weight")
    assert not cp.is_pruned(lin) and jp.is_nm(lin.weight.detach().numpy(), 2, 4, dim=1)


def test_torch_s_generator_is_reproducible_and_keeps_n_per_group():
    def run(seed):
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(8, 6, 3)
        torch.manual_seed(seed)
        cp.random_nm(conv, "weight", 2, 4)
        return conv.weight_mask

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a.reshape(6, 2, 4, 3, 3).sum(dim=2) == 2).all()


def test_refusals_and_rollback():
    lin = torch.nn.Linear(6, 4)
    with pytest.raises(ValueError, match="n=5"):
        cp.nm_unstructured(lin, "weight", 5, 4)
    with pytest.raises(TypeError, match="m must be an int"):
        cp.NMUnstructured(2, 4.0)
    with pytest.raises(ValueError, match="length along dim=1 is 6"):
        cp.nm_unstructured(lin, "weight", 2, 4)
    assert not cp.is_pruned(lin) and sorted(lin.state_dict()) == ["bias", "weight"]
    cp.l1_unstructured(lin, "weight", amount=2)
    state = copy.deepcopy(lin.state_dict())
    with pytest.raises(ValueError, match="multiple of m=4"):
        cp.random_nm(lin, "weight", 1, 4)  # a failed call leaves the module as it was
    assert all(torch.equal(state[k], v) for k, v in lin.state_dict().items())
    assert isinstance(next(iter(lin._forward_pre_hooks.values())), cp.L1Unstructured)
    with pytest.raises(TypeError, match='Only "unstructured"'):
        cp.global_unstructured([(lin, "bias")], cp.NMUnstructured, n=1, m=2)


@pytest.mark.parametrize("make", [lambda: torch.nn.Linear(10, 8), lambda: torch.nn.Conv2d(6, 4, 3)])
def test_blocks_the_flax_twin_loses_the_same_blocks(make):
    torch.manual_seed(2)
    module = make()
    w = module.weight.detach().clone()
    cp.block_structured(module, "weight", 0.5, (4, 3), n=2)  # (out, in) blocks of torch's matrix
    twin = np.asarray(jp.block_structured(_flax(w), 0.5, (3, 4), 2))  # (in, out) in Flax's
    np.testing.assert_array_equal(module.weight_mask.numpy().astype(bool), _torch(twin, w.dim()))
    key = jax.random.key(4)
    other = make()
    cp.random_block_structured(other, "weight", 2, (2, 2), key=key)
    twin = np.asarray(jp.random_block_structured(key, _flax(other.weight_orig), 2, (2, 2)))
    np.testing.assert_array_equal(other.weight_mask.numpy().astype(bool), _torch(twin, w.dim()))


def test_blocks_rounds_generator_and_refusals():
    torch.manual_seed(3)
    lin = torch.nn.Linear(8, 8)
    torch.manual_seed(7)
    cp.random_block_structured(lin, "weight", 0.25, (4, 4))  # torch's generator
    first = lin.weight_mask.clone()
    assert int((first == 0).sum()) == 16  # one of the four 4x4 blocks
    torch.manual_seed(7)
    again = torch.nn.Linear(8, 8)
    again.load_state_dict({"weight": lin.weight_orig.detach(), "bias": lin.bias.detach()})
    cp.random_block_structured(again, "weight", 0.25, (4, 4))
    assert torch.equal(again.weight_mask, first)  # the same seed, the same blocks
    tp.l1_unstructured(lin, "weight", amount=5)  # torch's class in between
    cp.block_structured(lin, "weight", 1, (4, 4))  # one more of the blocks still alive
    assert int((lin.weight_mask.reshape(2, 4, 2, 4).sum(dim=(1, 3)) == 0).sum()) == 2
    with pytest.raises(TypeError, match="block_shape"):
        cp.block_structured(lin, "weight", 1, 4)
    with pytest.raises(ValueError, match="amount=5"):
        cp.block_structured(lin, "weight", 5, (4, 4))  # 2 blocks left
    assert isinstance(next(iter(lin._forward_pre_hooks.values())), tp.PruningContainer)
    with pytest.raises(ValueError, match="two dimensions"):
        cp.block_structured(lin, "bias", 1, (2, 2))
    assert "bias_mask" not in dict(lin.named_buffers())
