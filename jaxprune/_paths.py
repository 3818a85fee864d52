"""Pytree paths as strings, and leaf selection with ``where``."""

from __future__ import annotations

import re
from typing import Any

import jax

from . import _checks
from ._typing import PyTree, Where


def _entry(k: Any) -> str:
    if isinstance(k, jax.tree_util.DictKey):
        return str(k.key)
    if isinstance(k, jax.tree_util.SequenceKey):
        return str(k.idx)
    if isinstance(k, jax.tree_util.GetAttrKey):
        return k.name
    if isinstance(k, jax.tree_util.FlattenedIndexKey):
        return str(k.key)
    return str(k)


def path_string(path: tuple[Any, ...]) -> str:
    """Join a key path with ``/``: ``"Dense_0/kernel"``, ``"layers/0/kernel"``.

    A trailing attribute ``value`` (how a Flax NNX ``Variable`` exposes its array) is dropped,
    so NNX state paths read like linen ones.
    """
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return "/".join(_entry(k) for k in path)


#: Path strings by tree structure: a structure's key paths never change, and spelling them
#: out is most of the per-call overhead of a training loop's pruning on a large model.
_PATHS: dict[Any, list[str]] = {}
_PATHS_MAX = 256


def flatten(tree: PyTree) -> tuple[list[str], list[Any], Any]:
    """Paths, leaves and treedef of ``tree``.

    Raises:
        ValueError: two leaves have the same path string (``{"a/b": x, "a": {"b": y}}``):
            masks, scores and priors are matched by it, so the tree is refused.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    paths = _PATHS.get(treedef)
    if paths is None:
        with_path, _ = jax.tree_util.tree_flatten_with_path(tree)
        paths = [path_string(p) for p, _ in with_path]
        seen: dict[str, Any] = {}
        for (keys, _), p in zip(with_path, paths):
            if p in seen:
                first, second = jax.tree_util.keystr(seen[p]), jax.tree_util.keystr(keys)
                raise ValueError(
                    f"the leaves {first} and {second} have the same path {p!r}: masks are "
                    "matched to leaves by path, so rename one of them"
                )
            seen[p] = keys
        if len(_PATHS) >= _PATHS_MAX:
            _PATHS.clear()
        _PATHS[treedef] = paths
    return list(paths), leaves, treedef


def is_array(leaf: Any) -> bool:
    return hasattr(leaf, "shape") and hasattr(leaf, "dtype")


def is_default(leaf: Any) -> bool:
    """The default selection: a floating leaf with at least two dimensions."""
    return is_array(leaf) and len(leaf.shape) >= 2 and _checks.kind(leaf.dtype) == "float"


def select(paths: list[str], leaves: list[Any], where: Where) -> list[bool]:
    """Which leaves ``where`` selects; only array leaves can be selected.

    ``None`` selects floating leaves with at least two dimensions; a string is a regular
    expression searched (``re.search``) in the path; a callable is called as
    ``where(path, leaf)``.

    Raises:
        TypeError: ``where`` is of another type.
        ValueError: an invalid regular expression, or nothing is selected.
    """
    if where is None:
        chosen = [is_default(leaf) for leaf in leaves]
    elif isinstance(where, str):
        try:
            pattern = re.compile(where)
        except re.error as e:
            raise ValueError(f"where={where!r} is not a valid regular expression: {e}") from None
        chosen = [
            is_array(leaf) and pattern.search(p) is not None for p, leaf in zip(paths, leaves)
        ]
    elif callable(where):
        chosen = [is_array(leaf) and bool(where(p, leaf)) for p, leaf in zip(paths, leaves)]
    else:
        raise TypeError(
            f"where must be a regular expression, a callable or None; got {type(where).__name__}."
        )
    if not any(chosen):
        shown = ", ".join(repr(p) for p, leaf in zip(paths, leaves) if is_array(leaf))
        raise ValueError(
            f"where={where!r} selected no leaf of params; its array leaves are: {shown or 'none'}"
        )
    return chosen


def by_path(tree: PyTree | None, name: str, paths: list[str]) -> dict[str, Any]:
    """Leaves of ``tree`` keyed by path; every key must be one of ``paths``.

    Raises:
        ValueError: ``tree`` has a leaf at a path that ``params`` does not have.
    """
    if tree is None:
        return {}
    tpaths, tleaves, _ = flatten(tree)
    known = set(paths)
    for p in tpaths:
        if p not in known:
            raise ValueError(f"{name} has a leaf at {p!r}, which params does not have.")
    return dict(zip(tpaths, tleaves))


class PathError:
    """Context manager that prefixes an error raised for one leaf with the leaf's path."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        if exc is not None and isinstance(exc, (TypeError, ValueError, IndexError)):
            if not str(exc).startswith(f"{self.path}: "):
                raise type(exc)(f"{self.path}: {exc}") from exc
        return False
