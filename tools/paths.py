"""Where the project is on disk, for the tools, the tests and the benchmarks."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
