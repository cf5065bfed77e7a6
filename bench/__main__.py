"""`make bench`: every benchmark, a table of figures against targets, bench/results.json.

A missed target fails it (exit 1, naming the scenarios). `python -m bench --quick`
runs the same scenarios at small sizes (the smoke test in `make test` does, to keep
them from rotting); its figures say nothing about targets, and it never fails on one.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench import auth_cost, gateway_throughput, job_scenarios, stub_scenarios
from bench.harness import FULL, QUICK
from bench.results import results_path, table_path, write_table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that every scenario runs")
    quick = parser.parse_args().quick

    results_path().unlink(missing_ok=True)
    gateway_throughput.main(calls_per_round=300 if quick else 3000, rounds=1 if quick else 3)
    auth_cost.main(calls=100 if quick else 2000)
    sizes = QUICK if quick else FULL
    stub_scenarios.run_all(sizes)
    job_scenarios.run_all(sizes)

    results = json.loads(results_path().read_text())
    write_table(results)
    print(f"\n{'scenario':<22} {'met':<5} target")
    for name, figures in results.items():
        print(f"{name:<22} {'yes' if figures['met'] else 'NO':<5} {figures['target']}")
    print(f"\nmachine: {next(iter(results.values()))['machine']}; figures in {results_path()} and {table_path()}")
    missed = [name for name, figures in results.items() if not figures["met"]]
    if missed and not quick:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
