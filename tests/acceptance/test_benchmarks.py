"""`make bench` at small sizes, so the benchmarks never rot. Checks that every
scenario runs and reports sane figures, not that targets are met."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tools.paths import PROJECT_ROOT

SCENARIOS = {
    "gateway_throughput": "ratio",
    "client_cpu": "job_cpu_ms_per_mentor",
    "end_to_end": "job_mentors_per_s",
    "latency_hiding": "ratio",
    "against_sequential": "speedup",
    "requests": "requests",
    "concurrency_sweep": "seconds_at_16",
    "memory": "peak_rss_mib_at_1000",
    "cold_start": "ratio",
    "database_scale": "ratio",
    "auth_cost": "oidc_warm_cache_ms",
    "rls_scale": "coordinator_ratio",
}


# The scenarios' own subprocess timeout, not pyproject.toml's default, bounds this test.
@pytest.mark.timeout(660)
def test_every_benchmark_runs_and_reports_sane_figures(tmp_path):
    results = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BENCH_RESULTS": str(results)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    # The markdown table the docs link to, written from the same figures.
    table = results.with_suffix(".md").read_text()
    assert all(f"| `{name}` |" in table for name in SCENARIOS)
    figures = json.loads(results.read_text())
    assert set(figures) == set(SCENARIOS)
    for scenario, key in SCENARIOS.items():
        value = figures[scenario][key]
        assert isinstance(value, int | float), (scenario, value)
        assert math.isfinite(value), (scenario, value)
        assert value > 0, (scenario, value)
        assert isinstance(figures[scenario]["met"], bool)
        assert scenario in completed.stdout  # the table names every row
    assert figures["requests"]["requests"] <= figures["requests"]["bound"]
    assert figures["cold_start"]["connections_at_import"] == 0
    assert figures["database_scale"]["plan_uses_index"] is True
    # At the quick sizes a sequential scan of a small table can be the right plan: reported, not required.
    for view in ("listed_peer_mentors", "certification_expiry_pauses"):
        assert isinstance(figures["database_scale"][f"{view}_plan_uses_index_at_20000"], bool)
    assert figures["auth_cost"]["certificate_fetches"] == 1
    assert 0 < figures["memory"]["cpu_ms_per_mentor_at_1000"] < 100  # the sizing table's input
    for floor in ("supabase_py_cpu_ms_per_call", "http_client_cpu_ms_per_call"):
        assert 0 < figures["client_cpu"][floor] < 100
    split = [f"split_{part}_in_supabase_py_ms" for part in ("workers", "job_thread")]
    split += [f"split_{part}_job_ms" for part in ("workers", "job_thread")]
    assert all(0 < figures["client_cpu"][part] < 100 for part in split)
