"""The suite's outputs: a rich table, a JSON document and the W8 scaling plot."""

from __future__ import annotations

import json
import math
from typing import Any

from ._rows import Row


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} us"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "%":
        return f"{value:.3g} %"
    return f"{value:.2f}x"


def _verdict(row: Row) -> str:
    parts = []
    for t, met in zip(row.targets, row.verdicts()):
        mark = "?" if met is None else ("met" if met else "MISSED")
        parts.append(f"{t.text()}: {mark}")
    return "; ".join(parts)


def _cells(rows: list[Row]) -> list[list[str]]:
    """The table's cells, row by row (a workload is named on its first row only)."""
    out, last = [], None
    for row in rows:
        ratio = row.ratio
        out.append(
            [
                row.workload if row.workload != last else "",
                row.what,
                fmt(row.jaxprune, row.unit),
                fmt(row.torch_compat, row.unit),
                fmt(row.torch, row.unit),
                "-" if ratio is None else f"{ratio:.3g}x",
                "-" if row.x_memcpy is None else f"{row.x_memcpy:.2f}",
                _verdict(row),
            ]
        )
        last = row.workload
    return out


def table(rows: list[Row], title: str) -> Any:
    """A ``rich.table.Table`` of the rows."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for name, justify in (
        ("workload", "left"),
        ("what", "left"),
        ("jaxprune", "right"),
        ("torch_compat", "right"),
        ("torch.nn.utils.prune", "right"),
        ("ratio", "right"),
        ("x memcpy", "right"),
        ("target", "left"),
    ):
        t.add_column(name, justify=justify)
    for cells in _cells(rows):
        t.add_row(*cells)
    return t


def markdown(rows: list[Row]) -> str:
    """The table as GitHub markdown."""
    lines = [
        "| workload | what | jaxprune | torch_compat | torch | ratio | x memcpy | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in _cells(rows)]
    return "\n".join(lines) + "\n"


def print_table(rows: list[Row], title: str, notes: list[str]) -> None:
    from rich.console import Console

    console = Console(width=200)
    console.print(table(rows, title))
    for note in notes:
        console.print(note)


def write_json(path: str, doc: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, default=float)
        f.write("\n")


def plot(path: str, scaling: dict[str, Any], title: str) -> None:
    """Time against parameters (log-log) per implementation, slopes in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, slopes = scaling["points"], scaling["slopes"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for lib, marker in (("jaxprune", "o"), ("torch_compat", "s"), ("torch", "^")):
        ax.plot(
            [p / 1e6 for p in points["params"]],
            points[lib],
            marker=marker,
            label=f"{lib} (slope {slopes[lib]:.2f})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("seconds, median (steady state)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
