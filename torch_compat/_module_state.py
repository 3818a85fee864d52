"""A pruned module's state: snapshots for rollback, and deep copies torch cannot make."""

from __future__ import annotations

import collections
import copy

import torch
import torch.nn.utils.prune as _torch_prune

BasePruningMethod = _torch_prune.BasePruningMethod


class Snapshot:
    """A module's pruning-related state, to restore it exactly after a failed call."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.attrs = dict(module.__dict__)
        self.parameters = collections.OrderedDict(module._parameters)
        self.buffers = collections.OrderedDict(module._buffers)
        self.non_persistent = set(module._non_persistent_buffers_set)
        self.hooks = collections.OrderedDict(module._forward_pre_hooks)
        self.containers = {
            id(h): h._pruning_methods
            for h in module._forward_pre_hooks.values()
            if isinstance(h, _torch_prune.PruningContainer)
        }

    def restore(self) -> None:
        m = self.module
        m.__dict__.clear()
        m.__dict__.update(self.attrs)
        for live, saved in (
            (m._parameters, self.parameters),
            (m._buffers, self.buffers),
            (m._forward_pre_hooks, self.hooks),
        ):
            live.clear()
            live.update(saved)
        m._non_persistent_buffers_set.clear()
        m._non_persistent_buffers_set.update(self.non_persistent)
        for h in self.hooks.values():
            if id(h) in self.containers:
                h._pruning_methods = self.containers[id(h)]


def pruned_names(module: torch.nn.Module) -> list[str]:
    return [
        h._tensor_name
        for h in module._forward_pre_hooks.values()
        if isinstance(h, BasePruningMethod)
    ]


class DeepCopy:
    """``copy.deepcopy`` support for a pruned module.

    torch cannot deep-copy a module it pruned: the pruned attribute (``module.weight``) is a
    non-leaf tensor, and ``Tensor.__deepcopy__`` refuses those. torch_compat stores one of
    these objects as the module's ``__deepcopy__`` attribute: it copies the module without
    the pruned attributes and recomputes them in the copy with its pruning hooks.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module

    def __call__(self, memo: dict) -> torch.nn.Module:
        module = self.module
        own = module.__dict__.pop("__deepcopy__")
        saved = {n: module.__dict__.pop(n) for n in pruned_names(module) if n in module.__dict__}
        try:
            new = copy.deepcopy(module, memo)
        finally:
            module.__dict__.update(saved)
            module.__dict__["__deepcopy__"] = own
        for hook in new._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                hook(new, None)
        new.__dict__["__deepcopy__"] = DeepCopy(new)
        return new
