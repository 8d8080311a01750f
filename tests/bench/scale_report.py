"""The data-scale benchmark's table: one row per measurement, one column per run
(database, rows, layout), the targets checked on the 100k one-group runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Goal:
    text: str
    met: Callable[[float], bool]


GOALS: dict[str, Goal] = {
    "page 1 (ms)": Goal("≤ 50 ms", lambda value: value <= 50),
    "page 2 (ms)": Goal("≤ 50 ms", lambda value: value <= 50),
    "GraphQL example query (ms)": Goal("≤ 50 ms", lambda value: value <= 50),
    "/admin (ms)": Goal("≤ 100 ms", lambda value: value <= 100),
    "dockyard cache clear (s)": Goal("≤ 10 s", lambda value: value <= 10),
    "dockyard cache cleanup after TTL expiry (s)": Goal("≤ 60 s", lambda value: value <= 60),
}
PULL_GOAL = Goal("p99 ≤ 50 ms, no failure", lambda value: value <= 50)


@dataclass
class Run:
    column: str  # "SQLite 100k, one group"
    values: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)
    target_run: bool = False  # the run the targets are about

    def add(self, name: str, number: float, text: str | None = None) -> None:
        self.numbers[name] = number
        self.values[name] = text if text is not None else _format(number)
        print(f"[bench-scale] {self.column}: {name} = {self.values[name]}", flush=True)

    def verdicts(self) -> list[str]:
        lines = []
        for name, number in self.numbers.items():
            goal = GOALS.get(name) or (PULL_GOAL if name.startswith("pulls elsewhere") else None)
            if goal is None:
                continue
            met = goal.met(number) and not self.values[name].endswith("failed)")
            lines.append(
                f"{name}: {self.values[name]} — target {goal.text}: "
                + ("met" if met else "NOT MET")
            )
        return lines


def _format(number: float) -> str:
    return f"{number:,.0f}" if number >= 100 else f"{number:.3g}"


@dataclass
class ScaleReport:
    runs: list[Run] = field(default_factory=list)

    def table(self) -> str:
        names: list[str] = []
        for run in self.runs:
            names += [name for name in run.values if name not in names]
        lines = [
            "| measurement | " + " | ".join(run.column for run in self.runs) + " |",
            "|---|" + "---:|" * len(self.runs),
        ]
        for name in names:
            cells = [run.values.get(name, "") for run in self.runs]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        verdicts = [
            f"- {run.column}: {line}"
            for run in self.runs
            if run.target_run
            for line in run.verdicts()
        ]
        return "\n".join([*lines, "", *verdicts])

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                [
                    {"column": run.column, "values": run.values, "numbers": run.numbers}
                    for run in self.runs
                ],
                indent=2,
            )
        )


SCALE_REPORT = ScaleReport()
