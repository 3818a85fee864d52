"""Checkpoint files for the command line: read and (atomically) write params pytrees.

Formats, chosen by the path: ``.npz`` (NumPy), ``.safetensors``, ``.pt``/``.pth`` (a torch
``state_dict``), and a directory (orbax-checkpoint). ``.npz``, ``.safetensors`` and torch
files hold a flat mapping from names to arrays; names are used as paths as they are
(``"Dense_0/kernel"``, ``"0.weight"``). An orbax checkpoint holds a nested pytree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np

FORMATS = ("npz", "safetensors", "torch", "orbax")


class CheckpointError(Exception):
    """A checkpoint that cannot be read or written; the message is one line for the user."""


def format_of(path: str, must_exist: bool) -> str:
    if must_exist and not os.path.exists(path):
        raise CheckpointError(f"no such file or directory: {path!r}")
    lower = path.lower()
    if lower.endswith(".npz"):
        fmt = "npz"
    elif lower.endswith(".safetensors"):
        fmt = "safetensors"
    elif lower.endswith((".pt", ".pth")):
        fmt = "torch"
    elif os.path.isdir(path) or (not must_exist and not os.path.splitext(path)[1]):
        fmt = "orbax"
    else:
        raise CheckpointError(
            f"unknown checkpoint format for {path!r}: use .npz, .safetensors, .pt/.pth or an "
            "orbax directory"
        )
    return fmt


def load(path: str) -> Any:
    """The params pytree stored at ``path``."""
    fmt = format_of(path, must_exist=True)
    try:
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if fmt == "safetensors":
            from safetensors.numpy import load_file

            return load_file(path)
        if fmt == "torch":
            import torch
            from jax import dlpack

            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise CheckpointError(f"{path!r} does not hold a state_dict")
            return {k: dlpack.from_dlpack(v.detach().contiguous()) for k, v in state.items()}
        import orbax.checkpoint as ocp

        return ocp.StandardCheckpointer().restore(os.path.abspath(path))
    except CheckpointError:
        raise
    except ImportError as e:
        raise CheckpointError(f"reading {fmt} needs a package that is missing: {e.name}") from e
    except Exception as e:  # a corrupt or foreign file
        raise CheckpointError(f"cannot read {path!r} as {fmt}: {e}".splitlines()[0]) from e


def save(params: Any, path: str) -> None:
    """Write ``params`` to ``path`` atomically: to a temporary sibling, then renamed."""
    fmt = format_of(path, must_exist=False)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".jaxprune-", dir=parent)
    try:
        staged = os.path.join(tmp, "out" + ("" if fmt == "orbax" else os.path.splitext(path)[1]))
        _write(params, staged, fmt)
        if os.path.isdir(path) and fmt == "orbax":
            old = os.path.join(tmp, "previous")
            os.replace(path, old)
            os.replace(staged, path)
        else:
            os.replace(staged, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _flat(params: Any) -> dict[str, np.ndarray]:
    from . import _paths

    paths, leaves, _ = _paths.flatten(params)
    return {p: leaf for p, leaf in zip(paths, leaves) if _paths.is_array(leaf)}


def _write(params: Any, path: str, fmt: str) -> None:
    if fmt == "npz":
        flat = {k: np.asarray(v) for k, v in _flat(params).items()}
        with open(path, "wb") as f:
            np.savez(f, **flat)
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in _flat(params).items()}, path)
    elif fmt == "torch":
        import torch

        flat = {k: torch.from_dlpack(v).clone() for k, v in _flat(params).items()}
        torch.save(flat, path)
    else:
        import orbax.checkpoint as ocp

        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(os.path.abspath(path), params)
        checkpointer.wait_until_finished()
