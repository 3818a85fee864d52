import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state

from torch_compat import prune as cp


def nets(seed=0):
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Conv1d(2, 3, 2), torch.nn.Linear(6, 4))
    b = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Conv1d(2, 3, 2), torch.nn.Linear(6, 4))
    b.load_state_dict(a.state_dict())
    return a, b


def params(net):
    return [(net[0], "weight"), (net[1], "weight"), (net[2], "weight"), (net[2], "bias")]


@pytest.mark.parametrize("method", ["L1Unstructured", "RandomUnstructured"])
@pytest.mark.parametrize("amount", [0, 10, 0.3, 0.5, 1.0])
def test_global_first_round(method, amount):
    a, b = nets()
    torch.manual_seed(1)
    tp.global_unstructured(params(a), pruning_method=getattr(tp, method), amount=amount)
    torch.manual_seed(1)
    cp.global_unstructured(params(b), pruning_method=getattr(cp, method), amount=amount)
    assert_same_state(a, b)


@pytest.mark.parametrize("method", ["L1Unstructured", "RandomUnstructured"])
def test_global_with_prior_masks_and_rounds(method):
    a, b = nets(1)
    torch.manual_seed(2)
    tp.random_structured(a[0], "weight", amount=2, dim=0)
    tp.l1_unstructured(a[1], "weight", amount=0.5)
    torch.manual_seed(2)
    cp.random_structured(b[0], "weight", amount=2, dim=0)
    cp.l1_unstructured(b[1], "weight", amount=0.5)
    assert_same_state(a, b)
    for seed, amount in [(3, 0.4), (4, 5), (5, 0.5)]:
        torch.manual_seed(seed)
        tp.global_unstructured(params(a), pruning_method=getattr(tp, method), amount=amount)
        torch.manual_seed(seed)
        cp.global_unstructured(params(b), pruning_method=getattr(cp, method), amount=amount)
        assert_same_state(a, b)
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(a[0](x), b[0](x))


def test_global_importance_scores():
    a, b = nets(2)
    torch.manual_seed(0)
    sa = {(a[0], "weight"): torch.rand(6, 8), (a[2], "weight"): torch.rand(4, 6)}
    sb = {(b[0], "weight"): sa[(a[0], "weight")], (b[2], "weight"): sa[(a[2], "weight")]}
    tp.global_unstructured(params(a), tp.L1Unstructured, importance_scores=sa, amount=0.5)
    cp.global_unstructured(params(b), cp.L1Unstructured, importance_scores=sb, amount=0.5)
    assert_same_state(a, b)


def test_torch_methods_accepted_and_type_checks():
    a, b = nets(3)
    tp.global_unstructured(params(a), tp.L1Unstructured, amount=7)
    cp.global_unstructured(params(b), tp.L1Unstructured, amount=7)  # torch's class
    assert_same_state(a, b)
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE'):
        cp.global_unstructured(params(b), cp.RandomStructured, amount=1)
    with pytest.raises(TypeError, match="parameters is not an Iterable"):
        cp.global_unstructured(3, cp.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="importance_scores must be of type dict"):
        cp.global_unstructured(params(b), cp.L1Unstructured, importance_scores=[1], amount=1)


def test_generator_of_parameters_is_applied():
    # torch reads `parameters` twice, so a generator is empty the second time and torch
    # fails (torch.cat of nothing); torch_compat reads it once.
    a, b = nets(4)
    with pytest.raises(ValueError, match="expected a non-empty list"):
        tp.global_unstructured(iter(params(a)), tp.L1Unstructured, amount=10)
    assert not tp.is_pruned(a)
    cp.global_unstructured(iter(params(b)), cp.L1Unstructured, amount=10)
    total = sum(int((getattr(m, n + "_mask") == 0).sum()) for m, n in params(b))
    assert total == 10
