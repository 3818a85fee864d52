"""Helpers for running torch and torch_compat side by side on identical modules."""

import copy

import torch
import torch.nn.utils.prune as tp

from torch_compat import prune as cp

MODULES = {
    "linear": lambda: torch.nn.Linear(7, 5),
    "conv1d": lambda: torch.nn.Conv1d(3, 4, 3),
    "conv2d": lambda: torch.nn.Conv2d(3, 6, (3, 2)),
    "conv3d": lambda: torch.nn.Conv3d(2, 4, 2),
    "embedding": lambda: torch.nn.Embedding(10, 4),
}

INPUTS = {
    "linear": lambda: torch.randn(2, 7),
    "conv1d": lambda: torch.randn(2, 3, 9),
    "conv2d": lambda: torch.randn(2, 3, 8, 7),
    "conv3d": lambda: torch.randn(1, 2, 4, 4, 4),
    "embedding": lambda: torch.tensor([[1, 2, 9], [0, 0, 5]]),
}


def twins(kind, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    a = MODULES[kind]().to(dtype)
    b = copy.deepcopy(a)
    return a, b


def run_both(a, b, fn, *args, seed=123, **kwargs):
    """Call ``fn`` of torch on ``a`` and of torch_compat on ``b`` under the same seed."""
    torch.manual_seed(seed)
    getattr(tp, fn)(a, *args, **kwargs)
    torch.manual_seed(seed)
    getattr(cp, fn)(b, *args, **kwargs)


def hook_summary(module):
    out = []
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, tp.BasePruningMethod):
            methods = list(hook) if isinstance(hook, tp.PruningContainer) else [hook]
            out.append(
                (
                    isinstance(hook, tp.PruningContainer),
                    hook._tensor_name,
                    [
                        (
                            type(m).__name__,
                            getattr(m, "amount", None),
                            getattr(m, "dim", None),
                            getattr(m, "n", None),
                        )
                        for m in methods
                    ],
                )
            )
    return out


def assert_same_state(a, b):
    """Parameters, buffers, hooks and pruned attributes identical, bit for bit."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert list(pa) == list(pb)
    for k in pa:
        assert pa[k].dtype == pb[k].dtype and pa[k].shape == pb[k].shape
        assert torch.equal(pa[k], pb[k]), k
    ba, bb = dict(a.named_buffers()), dict(b.named_buffers())
    assert list(ba) == list(bb)
    for k in ba:
        assert ba[k].dtype == bb[k].dtype and ba[k].shape == bb[k].shape, k
        assert torch.equal(ba[k], bb[k]), k
    for mod_a, mod_b in zip(a.modules(), b.modules()):
        assert hook_summary(mod_a) == hook_summary(mod_b)
        for name in [h[1] for h in hook_summary(mod_a)]:
            assert torch.equal(getattr(mod_a, name), getattr(mod_b, name))
    assert list(a.state_dict()) == list(b.state_dict())


def assert_same_forward(a, b, kind):
    torch.manual_seed(7)
    x = INPUTS[kind]()
    if kind != "embedding":
        x = x.to(next(a.parameters()).dtype)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
