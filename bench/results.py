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
