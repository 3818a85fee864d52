"""The benchmark models, built once with the same values in both layouts.

torch modules hold ``(out, in[, kh, kw])`` weights and are pruned along ``dim=0``; the Flax
params hold ``([kh, kw,] in, out)`` kernels and are pruned along ``dim=-1``: the same channels.
"""

from __future__ import annotations

from typing import Any

#: GPT-2-medium's four Linear layers per block: (in, out) at d=1024.
GPT2_BLOCK = (("qkv", 1024, 3072), ("proj", 1024, 1024), ("fc", 1024, 4096), ("fc2", 4096, 1024))


def resnet50_shapes(width: int = 64) -> list[tuple[str, tuple[int, ...]]]:
    """(name, Flax kernel shape) of every conv and dense weight of ResNet-50 (``width`` 64);
    a smaller ``width`` scales every channel count."""
    shapes = [("conv_init", (7, 7, 3, width))]
    cin = width
    for stage, blocks in enumerate((3, 4, 6, 3)):
        w = width * 2**stage
        for b in range(blocks):
            name = f"stage{stage}_block{b}"
            shapes += [
                (f"{name}_conv1", (1, 1, cin, w)),
                (f"{name}_conv2", (3, 3, w, w)),
                (f"{name}_conv3", (1, 1, w, 4 * w)),
            ]
            if b == 0:
                shapes.append((f"{name}_downsample", (1, 1, cin, 4 * w)))
            cin = 4 * w
    shapes.append(("fc", (cin, 1000)))
    return shapes


def gpt2_shapes(blocks: int, scale: int = 1) -> list[tuple[str, tuple[int, int]]]:
    """(name, Flax kernel shape) of a GPT-2-medium-shaped stack; ``scale`` divides d."""
    return [
        (f"h{b}_{name}", (cin // scale, cout // scale))
        for b in range(blocks)
        for name, cin, cout in GPT2_BLOCK
    ]


def torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The torch layout of a Flax kernel shape."""
    if len(shape) == 4:
        kh, kw, cin, cout = shape
        return (cout, cin, kh, kw)
    cin, cout = shape
    return (cout, cin)


class Model:
    """One model in both layouts: ``params`` (a flat dict of Flax kernels) and ``modules``
    (torch modules with a ``weight`` each), sharing values, not memory."""

    def __init__(self, shapes: list[tuple[str, tuple[int, ...]]], *, torch_side: bool = True):
        import jax
        import jax.numpy as jnp

        self.shapes = shapes
        self.n_params = sum(Model.size(s) for _, s in shapes)
        self.nbytes = 4 * self.n_params
        key = jax.random.key(0)
        normal = jax.jit(jax.random.normal, static_argnums=1)
        self.params = {
            name: {"kernel": normal(jax.random.fold_in(key, i), shape)}
            for i, (name, shape) in enumerate(shapes)
        }
        jax.block_until_ready(self.params)
        self.modules: list[Any] = []
        if torch_side:
            import numpy as np
            import torch

            for name, shape in shapes:
                m = torch.nn.Module()
                kernel = np.asarray(self.params[name]["kernel"])
                axes = (3, 2, 0, 1) if len(shape) == 4 else (1, 0)
                m.weight = torch.nn.Parameter(torch.from_numpy(kernel.transpose(axes).copy()))
                self.modules.append(m)
        jnp.zeros(())  # backend up before any clock starts

    @staticmethod
    def size(shape: tuple[int, ...]) -> int:
        """Entries of a weight of this shape."""
        out = 1
        for d in shape:
            out *= d
        return out

    def subset(self, n: int) -> Model:
        """The first ``n`` weights as a model of their own (shared arrays and modules)."""
        sub = object.__new__(Model)
        sub.shapes = self.shapes[:n]
        sub.n_params = sum(Model.size(s) for _, s in sub.shapes)
        sub.nbytes = 4 * sub.n_params
        sub.params = {name: self.params[name] for name, _ in sub.shapes}
        sub.modules = self.modules[:n]
        return sub


def unprune(module: Any, name: str = "weight") -> None:
    """Undo a torch prune without applying its mask: ``weight_orig`` becomes the parameter
    again (no copy) and the mask and hook are dropped, as after ``prune.remove`` but with the
    original values, so repeated runs prune the same weights."""
    from torch.nn.utils import prune

    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == name:
            del module._forward_pre_hooks[k]
    orig = module._parameters.pop(name + "_orig")
    del module._buffers[name + "_mask"]
    delattr(module, name)
    module.register_parameter(name, orig)


def unprune_all(modules: list[Any]) -> None:
    """:func:`unprune` every module that is pruned."""
    for m in modules:
        if "weight_orig" in m._parameters:
            unprune(m)
