"""The benchmark's results: rows of medians, ratios and targets, printed as one table.

Every benchmark adds rows to :data:`REPORT`; the bench conftest prints it at the
end of the session (``make bench`` runs pytest with ``-s``, and the table also
goes to the terminal summary). Targets are informational: a missed target is
printed as "not met", it never fails the run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass(frozen=True)
class Target:
    """A goal for a row: ``text`` as printed, ``met`` decides from the row."""

    text: str
    met: Callable[[Row], bool]


def ratio_at_most(bound: float) -> Target:
    return Target(f"ratio <= {bound:g}", lambda row: row.ratio is not None and row.ratio <= bound)


def ratio_at_least(bound: float) -> Target:
    return Target(f"ratio >= {bound:g}", lambda row: row.ratio is not None and row.ratio >= bound)


def dockyard_below(bound: float, unit: str) -> Target:
    return Target(
        f"< {bound:g} {unit}", lambda row: row.dockyard is not None and row.dockyard < bound
    )


@dataclass
class Row:
    """One measurement: medians for Dockyard, the reference proxy and a direct pull."""

    name: str
    unit: str
    dockyard: float | None
    proxy: float | None = None
    direct: float | None = None
    samples: int = 0
    target: Target | None = None
    note: str = ""
    #: What the ratio compares Dockyard with: "proxy" or "direct" (rows with no proxy).
    against: str = "proxy"

    @property
    def ratio(self) -> float | None:
        """Dockyard / the reference (for times, lower is better; for rates, higher)."""
        reference = self.direct if self.against == "direct" else self.proxy
        if self.dockyard is None or not reference:
            return None
        return self.dockyard / reference

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "met" if self.target.met(self) else "NOT MET"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"\n[bench] {format_rows([row])[-1]} {row.note}", flush=True)
        return row

    def header(self) -> str:
        day = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))
        return (
            f"Dockyard benchmark, {day}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.machine()}"
        )

    def table(self) -> str:
        notes = [f"[{n}] {row.note}" for n, row in enumerate(self.rows, 1) if row.note]
        return "\n".join([self.header(), "", *format_rows(self.rows), "", *notes])

    def save(self, path: Path) -> None:
        rows = [
            {**{k: v for k, v in asdict(row).items() if k != "target"}}
            | {"ratio": row.ratio, "target": row.target.text if row.target else None}
            | {"verdict": row.verdict}
            for row in self.rows
        ]
        path.write_text(json.dumps({"header": self.header(), "rows": rows}, indent=2))


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def format_rows(rows: Sequence[Row]) -> list[str]:
    """A Markdown table, so the output can be pasted into docs/benchmarks.md."""
    lines = [
        "| measurement | unit | Dockyard | reference proxy | direct | ratio | n | target | |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for number, row in enumerate(rows, 1):
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        target = row.target.text if row.target else ""
        name = f"{row.name} [{number}]" if row.note else row.name
        cells = [
            name,
            row.unit,
            _number(row.dockyard),
            _number(row.proxy),
            _number(row.direct),
            ratio,
            str(row.samples),
            target,
            row.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


#: The session's results, filled by the benchmarks and printed at the end.
REPORT = Report()
