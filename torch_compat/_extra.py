"""torch_compat's methods beyond torch's list: N:M sparsity and blocks.

Re-exported by :mod:`torch_compat.prune` (``prune.NMUnstructured``, ``prune.nm_unstructured``
and the rest); the shared machinery, the twin property included, is in
:mod:`torch_compat._nm`.
"""

from __future__ import annotations

from . import _nm


def _apply():
    """``prune._apply`` (torch's ``BasePruningMethod.apply``, computed before anything is
    changed), imported when first used: ``prune`` imports this module."""
    from .prune import _apply as apply

    return apply


def _key_data(key):
    """A JAX key's data, through torch_compat's JAX side (imported when first needed)."""
    from .prune import _engine

    return _engine().key_data(key)


class NMUnstructured(_nm.GroupMethod):
    """Keeps, in every group of ``m`` consecutive entries along ``dim``, the ``n`` unpruned
    ones of largest magnitude (``dim=1``: torch's input channels). Not in torch's list; a
    torch weight and its Flax twin get the same mask, transposed."""

    def __init__(self, n, m, dim=1):
        _nm.check_nm(n, m, dim)
        self.n, self.m, self.dim = n, m, dim

    @classmethod
    def apply(cls, module, name, n, m, dim=1, importance_scores=None):  # type: ignore[override]
        return _apply()(cls, module, name, n, m, dim=dim, importance_scores=importance_scores)


class RandomNM(_nm.GroupMethod):
    """Keeps ``n`` random unpruned entries in every group of ``m`` along ``dim``: from
    torch's default generator (one ``torch.rand`` draw per entry, the highest kept), or from
    a JAX ``key``, which gives ``jaxprune.random_nm``'s mask of the Flax twin."""

    RANDOM = True

    def __init__(self, n, m, dim=1, key=None):
        _nm.check_nm(n, m, dim)
        self.n, self.m, self.dim = n, m, dim
        self.key = None if key is None else _key_data(key)

    @classmethod
    def apply(cls, module, name, n, m, dim=1, key=None):  # type: ignore[override]
        return _apply()(cls, module, name, n, m, dim=dim, key=key)


class BlockStructured(_nm.BlockMethod):
    """Prunes the ``amount`` unpruned blocks of smallest L``n`` norm. ``block_shape`` is
    ``(rows, cols)`` of torch's ``(out, in)`` matrix; a conv weight ``(out, in, kh, kw)`` is
    pruned in ``(out, in)`` blocks for each kernel position, as its Flax twin is. Not in
    torch's list; the twin loses the same blocks."""

    def __init__(self, amount, block_shape, n=1):
        self.block_shape = _nm.check_blocks(amount, block_shape)
        self.amount, self.n = amount, n

    @classmethod
    def apply(cls, module, name, amount, block_shape, n=1, importance_scores=None):  # type: ignore[override]
        return _apply()(
            cls, module, name, amount, block_shape, n=n, importance_scores=importance_scores
        )


class RandomBlockStructured(_nm.BlockMethod):
    """Prunes ``amount`` random unpruned blocks (torch's generator: one ``torch.rand`` draw
    per block, the lowest pruned; or a JAX ``key``, which gives jaxprune's mask of the Flax
    twin)."""

    RANDOM = True

    def __init__(self, amount, block_shape, key=None):
        self.block_shape = _nm.check_blocks(amount, block_shape)
        self.amount = amount
        self.key = None if key is None else _key_data(key)

    @classmethod
    def apply(cls, module, name, amount, block_shape, key=None):  # type: ignore[override]
        return _apply()(cls, module, name, amount, block_shape, key=key)


def nm_unstructured(module, name, n, m, dim=1, importance_scores=None):
    """Keep the ``n`` largest-magnitude entries of every ``m`` consecutive ones of
    ``module.<name>`` along ``dim`` (2:4 sparsity: ``n=2, m=4``); returns ``module``."""
    NMUnstructured.apply(module, name, n, m, dim=dim, importance_scores=importance_scores)
    return module


def random_nm(module, name, n, m, dim=1, key=None):
    """Keep ``n`` random entries of every ``m`` consecutive ones of ``module.<name>`` along
    ``dim``; returns ``module``."""
    RandomNM.apply(module, name, n, m, dim=dim, key=key)
    return module


def block_structured(module, name, amount, block_shape, n=1, importance_scores=None):
    """Prune the ``amount`` unpruned ``block_shape`` blocks of ``module.<name>`` of smallest
    L``n`` norm; returns ``module``."""
    BlockStructured.apply(
        module, name, amount, block_shape, n=n, importance_scores=importance_scores
    )
    return module


def random_block_structured(module, name, amount, block_shape, key=None):
    """Prune ``amount`` random unpruned ``block_shape`` blocks of ``module.<name>``; returns
    ``module``."""
    RandomBlockStructured.apply(module, name, amount, block_shape, key=key)
    return module
