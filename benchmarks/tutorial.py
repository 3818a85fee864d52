"""PyTorch's pruning tutorial as one script: ``python -m benchmarks.tutorial torch`` or
``... torch_compat`` (the one-import change). The first-contact benchmark times it from
outside, interpreter start and imports included.

The same modules and calls as the tutorial: a LeNet; random, L1 and Ln-structured pruning of
one layer with the iterative container, then ``remove``; L1 pruning of every conv and linear
layer; global L1 pruning of five weights; a pruning method of the user's own (every other
entry), subclassing ``BasePruningMethod``. Prints the sparsities it reaches and a checksum of
every mask, so two runs can be compared.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn


def load_prune(lib: str):
    if lib == "torch":
        from torch.nn.utils import prune
    elif lib == "torch_compat":
        from torch_compat import prune
    else:
        raise SystemExit(f"usage: python -m benchmarks.tutorial torch|torch_compat, not {lib!r}")
    return prune


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)  # 1 input image channel, 6 output channels, 3x3
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5x5 image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, int(x.nelement() / x.shape[0]))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def run(prune) -> list[str]:
    lines = []
    torch.manual_seed(42)
    model = LeNet()
    module = model.conv1
    prune.random_unstructured(module, name="weight", amount=0.3)
    prune.l1_unstructured(module, name="bias", amount=3)
    prune.ln_structured(module, name="weight", amount=0.5, n=2, dim=0)
    lines.append(f"conv1 hooks {[type(h).__name__ for h in module._forward_pre_hooks.values()]}")
    prune.remove(module, "weight")
    lines.append(f"conv1 zeros {int((module.weight == 0).sum())}")

    new_model = LeNet()
    for _, m in new_model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            prune.l1_unstructured(m, name="weight", amount=0.2)
        elif isinstance(m, torch.nn.Linear):
            prune.l1_unstructured(m, name="weight", amount=0.4)
    lines.append(f"masks {sorted(dict(new_model.named_buffers()).keys())}")

    model = LeNet()
    parameters_to_prune = (
        (model.conv1, "weight"),
        (model.conv2, "weight"),
        (model.fc1, "weight"),
        (model.fc2, "weight"),
        (model.fc3, "weight"),
    )
    prune.global_unstructured(parameters_to_prune, pruning_method=prune.L1Unstructured, amount=0.2)
    total = zeros = 0
    for m, name in parameters_to_prune:
        w = getattr(m, name)
        zeros += int((w == 0).sum())
        total += w.nelement()
        lines.append(
            f"{name} of {type(m).__name__}: {100.0 * float((w == 0).sum()) / w.nelement():.2f}%"
        )
    lines.append(f"global sparsity {100.0 * zeros / total:.2f}%")

    class FooBarPruningMethod(prune.BasePruningMethod):
        """Prune every other entry in a tensor."""

        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = default_mask.clone()
            mask.view(-1)[::2] = 0
            return mask

    def foobar_unstructured(module, name):
        FooBarPruningMethod.apply(module, name)
        return module

    model = LeNet()
    foobar_unstructured(model.fc3, name="bias")
    lines.append(f"fc3 bias mask {model.fc3.bias_mask.tolist()}")
    out = model(torch.randn(1, 1, 28, 28))  # 28x28: the 5x5 map fc1 expects
    lines.append(f"output {tuple(out.shape)}")
    return lines


def main(argv: list[str]) -> int:
    lib = argv[0] if argv else "torch"
    for line in run(load_prune(lib)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
