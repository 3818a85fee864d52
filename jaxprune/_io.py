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


#: The marker file in every orbax checkpoint directory this command wrote: only such a
#: directory is ever replaced by a later run (``--overwrite`` extends that to another orbax
#: checkpoint, never to any other directory).
MARKER = ".jaxprune-output"
#: Temporary siblings of OUT are named ``.<OUT's name>.jaxprune-partial-<pid>-<random>``: a
#: run that was killed leaves one, which the next run writing the same OUT removes once its
#: process is gone.
PARTIAL = ".jaxprune-partial-"


def _inside(child: str, parent: str) -> bool:
    return child != parent and child.startswith(parent.rstrip(os.sep) + os.sep)


def _is_orbax_checkpoint(path: str) -> bool:
    names = set(os.listdir(path))
    return bool(names & {"_CHECKPOINT_METADATA", "_METADATA", "checkpoint", "manifest.ocdbt"})


def check_output(out: str, *, source: str | None = None, overwrite: bool = False) -> str:
    """Validate OUT before any work, comparing real paths; returns its format.

    Refused: OUT that is IN (a symlink to it included), OUT inside IN or IN inside OUT, an
    existing directory OUT for a file format, an existing directory that is not a checkpoint
    this command wrote (another orbax checkpoint only with ``overwrite``), and OUT below a
    path that is not a directory.

    Raises:
        CheckpointError: with one line that says why.
    """
    fmt = format_of(out, must_exist=False)
    real_out = os.path.realpath(out)
    if source is not None:
        real_in = os.path.realpath(source)
        if real_in == real_out:
            raise CheckpointError("OUT must differ from IN: the input is never overwritten")
        if _inside(real_out, real_in):
            raise CheckpointError(f"OUT {out!r} is inside IN {source!r}: write it elsewhere")
        if _inside(real_in, real_out):
            raise CheckpointError(
                f"IN {source!r} is inside OUT {out!r}: writing OUT would replace it"
            )
    parent = os.path.dirname(real_out)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise CheckpointError(f"cannot write {out!r}: {parent!r} is not a directory")
    if os.path.isdir(real_out):
        if fmt != "orbax":
            raise CheckpointError(f"OUT {out!r} is an existing directory, not a {fmt} file")
        ours = os.path.exists(os.path.join(real_out, MARKER))
        if not ours and not (overwrite and _is_orbax_checkpoint(real_out)):
            what = "an orbax checkpoint" if _is_orbax_checkpoint(real_out) else "a directory"
            hint = " (--overwrite replaces it)" if what == "an orbax checkpoint" else ""
            raise CheckpointError(
                f"OUT {out!r} is {what} that this command did not write; it is left as it is{hint}"
            )
    elif os.path.lexists(real_out) and not os.path.isfile(real_out):
        raise CheckpointError(f"OUT {out!r} exists and is not a regular file")
    return fmt


def _clean_partials(parent: str, name: str) -> None:
    """Remove the temporary siblings of ``name`` that killed runs of this command left."""
    prefix = f".{name}{PARTIAL}"
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running: another run's, not ours to remove
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
        except PermissionError:
            continue


def save(params: Any, path: str, *, source: str | None = None, overwrite: bool = False) -> None:
    """Write ``params`` to ``path`` atomically: to a temporary sibling, then renamed.

    Only ``path`` itself is replaced, and a directory only when :func:`check_output` allows
    it; ``source`` (the input) is never touched.
    """
    fmt = check_output(path, source=source, overwrite=overwrite)
    if fmt == "npz":
        _check_npz_dtypes(params)
    real = os.path.realpath(path)
    parent, name = os.path.dirname(real), os.path.basename(real)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create the folder of {path!r}: {e.strerror}") from e
    _clean_partials(parent, name)
    tmp = tempfile.mkdtemp(prefix=f".{name}{PARTIAL}{os.getpid()}-", dir=parent)
    try:
        staged = os.path.join(tmp, "out" + ("" if fmt == "orbax" else os.path.splitext(path)[1]))
        _write(params, staged, fmt)
        if fmt == "orbax":
            with open(os.path.join(staged, MARKER), "w") as f:
                f.write("written by jaxprune prune\n")
        if os.path.isdir(real) and fmt == "orbax":
            os.replace(real, os.path.join(tmp, "previous"))  # checked: ours, or --overwrite
        os.replace(staged, real)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_npz_dtypes(params: Any) -> None:
    for name, leaf in _flat(params).items():
        dtype = np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))
        if dtype.kind == "V" or dtype.type.__module__.startswith("ml_dtypes"):
            raise CheckpointError(
                f"{name} is {dtype.name}, which .npz cannot store readably (NumPy has no such "
                "type): write .safetensors, .pt or an orbax directory instead"
            )


def split_torch_pruned(params: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A torch ``state_dict`` of a pruned model read as what it is: ``<name>_orig`` and
    ``<name>_mask`` become the weight ``<name>`` and its prior mask.

    Returns ``(params, masks, reparametrized)``: ``masks`` is None when nothing is pruned;
    ``reparametrized`` maps each such name to its mask's original dtype (for
    :func:`join_torch_pruned`).
    """
    if not isinstance(params, dict):
        return params, None, {}
    names = {k[:-5] for k in params if k.endswith("_orig") and k[:-5] + "_mask" in params}
    if not names:
        return params, None, {}
    out, masks, dtypes = {}, {}, {}
    for k, v in params.items():
        base = k[:-5]  # without "_orig" or "_mask"
        if k.endswith("_orig") and base in names:
            out[base] = v
        elif k.endswith("_mask") and base in names:
            masks[base] = np.asarray(v) != 0
            dtypes[base] = v.dtype
        else:
            out[k] = v
    for name in out:
        masks.setdefault(name, np.ones((), bool))
    return out, masks, dtypes


def join_torch_pruned(params: Any, masks: Any, reparametrized: dict[str, Any]) -> Any:
    """The state_dict to write after pruning a split one: each reparametrized weight keeps its
    ``_orig`` values (as torch keeps them) with its updated ``_mask`` (full shape, its dtype);
    every other weight is written pruned."""
    import jax.numpy as jnp

    from . import _tree

    rest = [name for name in params if name not in reparametrized]
    pruned = _tree.apply_masks({n: params[n] for n in rest}, {n: masks[n] for n in rest})
    out = {}
    for name, value in params.items():
        if name in reparametrized:
            full = jnp.broadcast_to(jnp.asarray(masks[name]), value.shape)
            out[name + "_orig"] = value
            out[name + "_mask"] = full.astype(reparametrized[name])
        else:
            out[name] = pruned[name]
    return out


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
