"""A row of the results table: one workload, three implementations, derived ratios."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Target:
    """A goal for a row: ``ratio >=``, ``memcpy <=`` (jaxprune's time as a multiple of a
    memcpy of the same bytes) or ``value <=`` (jaxprune's own figure)."""

    kind: str
    value: float

    def text(self) -> str:
        if self.kind == "ratio>=":
            return f"ratio >= {self.value:g}"
        if self.kind == "memcpy<=":
            return f"<= {self.value:g}x memcpy"
        return f"<= {self.value:g}"

    def met(self, row: Row) -> bool | None:
        ours = row.jaxprune if row.jaxprune is not None else row.torch_compat
        got = {"ratio>=": row.ratio, "memcpy<=": row.x_memcpy, "value<=": ours}[self.kind]
        if got is None:
            return None
        return got >= self.value if self.kind == "ratio>=" else got <= self.value


@dataclasses.dataclass
class Row:
    """Figures of one workload. ``unit`` is ``"s"`` (median seconds), ``"x params"`` (bytes
    as a multiple of the parameter bytes) or ``"%"`` (percent of the parameter bytes).
    ``nbytes`` are the bytes a memcpy is timed on for the ``x_memcpy`` column."""

    id: str
    workload: str
    what: str
    unit: str = "s"
    jaxprune: float | None = None
    torch_compat: float | None = None
    torch: float | None = None
    nbytes: int | None = None
    memcpy_s: float | None = None
    targets: list[Target] = dataclasses.field(default_factory=list)
    notes: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """torch's figure over jaxprune's (torch_compat's where jaxprune has none)."""
        ours = self.jaxprune if self.jaxprune is not None else self.torch_compat
        if ours is None or self.torch is None or ours <= 0:
            return None
        return self.torch / ours

    @property
    def x_memcpy(self) -> float | None:
        if self.memcpy_s is None or self.jaxprune is None or self.unit != "s":
            return None
        return self.jaxprune / self.memcpy_s

    def verdicts(self) -> list[bool | None]:
        return [t.met(self) for t in self.targets]

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["targets"] = [
            {"kind": t.kind, "value": t.value, "text": t.text(), "met": t.met(self)}
            for t in self.targets
        ]
        out["ratio"] = self.ratio
        out["x_memcpy"] = self.x_memcpy
        return out
