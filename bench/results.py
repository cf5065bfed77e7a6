"""Benchmark figures: printed as a table and merged into bench/results.json, one key per scenario."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results.json"


def results_path() -> Path:
    """bench/results.json, or BENCH_RESULTS (the smoke test writes elsewhere)."""
    return Path(os.environ.get("BENCH_RESULTS", DEFAULT_RESULTS))


def table_path() -> Path:
    """bench/results.md beside the figures: the table the docs link to."""
    return results_path().with_suffix(".md")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def write_table(results: dict[str, dict[str, Any]]) -> None:
    """The figures of the last `make bench` as markdown, written from results.json alone."""
    lines = [
        "# Benchmark figures",
        "",
        "Written by `make bench` from `bench/results.json`; do not edit by hand.",
        f"Machine: {next(iter(results.values()))['machine'] if results else 'none'}.",
        "",
        "| scenario | met | target | figures |",
        "|---|---|---|---|",
    ]
    for name, figures in results.items():
        shown = "; ".join(
            f"{key} {_cell(value)}" for key, value in figures.items() if key not in ("target", "met", "machine")
        )
        lines.append(f"| `{name}` | {'yes' if figures['met'] else 'no'} | {_cell(figures['target'])} | {shown} |")
    lines += _sizing(results.get("memory", {}))
    table_path().write_text("\n".join(lines) + "\n")


# The CPU settings Cloud Run accepts: the deployment's whole vCPU (with its
# concurrency of 8), and fractions that require --concurrency=1 (docs/deploying.md).
VCPU_SETTINGS = {"1 vCPU (deployed)": 1.0, "0.5 vCPU, concurrency 1": 0.5, "0.333 vCPU, concurrency 1": 0.333}
SIZING_MENTORS = (10_000, 100_000, 1_000_000)


def _sizing(memory: dict[str, Any]) -> list[str]:
    """The run's CPU-bound time at each CPU setting, from the measured CPU per mentor
    (docs/deploying.md, "Sizing", explains the use)."""
    per_mentor = next((value for key, value in memory.items() if key.startswith("cpu_ms_per_mentor_at_")), None)
    if per_mentor is None:
        return []
    header = " | ".join(VCPU_SETTINGS)
    lines = [
        "",
        f"## Sizing: CPU-bound seconds of a run, at {per_mentor} ms of CPU per mentor",
        "",
        f"| mentors | CPU-seconds | {header} |",
        "|---" * (len(VCPU_SETTINGS) + 2) + "|",
    ]
    for mentors in SIZING_MENTORS:
        cpu = mentors * per_mentor / 1000
        cells = " | ".join(f"{cpu / vcpu:,.0f} s" for vcpu in VCPU_SETTINGS.values())
        lines.append(f"| {mentors:,} | {cpu:,.0f} | {cells} |")
    return lines


# Read at import, before any scenario pins the process to one core.
_CORES = len(os.sched_getaffinity(0))


def machine() -> str:
    return f"{platform.machine()}, {_CORES} cores, Python {platform.python_version()}"


def record(scenario: str, figures: dict[str, Any], target: str, met: bool) -> None:
    print(f"\n{scenario}: {'MET' if met else 'NOT MET'} (target: {target})")
    for name, value in figures.items():
        print(f"  {name:<32} {value}")
    path = results_path()
    results = json.loads(path.read_text()) if path.exists() else {}
    results[scenario] = {**figures, "target": target, "met": met, "machine": machine()}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
