"""`make mutation`'s summary: the share of mutants the deploy gate's tier (tests/unit)
kills, per file, from mutmut's own records in mutants/, written to
docs/mutation.md with every `# pragma: no mutate` line of the mutated files.

A killed mutant is one whose change made a unit test fail (mutmut counts a timeout
as caught too); "no tests" means no unit test ran the line at all. The threshold is
checked here, so that `make mutation` fails below it.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter

from tools.paths import PROJECT_ROOT

SUMMARY = PROJECT_ROOT / "docs" / "mutation.md"
THRESHOLD = 0.85
# mutmut's exit codes (mutmut/stats.py): the tests failed, or pytest failed, or timed out.
KILLED = {1, 3, 24, -24, 36, 152, 255, 37}
SURVIVED = {0}


def mutated_files() -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def tally(path: str) -> Counter[str]:
    meta = PROJECT_ROOT / "mutants" / f"{path}.meta"
    counts: Counter[str] = Counter()
    if not meta.exists():
        return counts
    for exit_code in json.loads(meta.read_text())["exit_code_by_key"].values():
        counts["killed" if exit_code in KILLED else "survived" if exit_code in SURVIVED else "no tests or other"] += 1
    return counts


def pragma_lines(path: str) -> list[str]:
    lines = (PROJECT_ROOT / path).read_text().splitlines()
    return [f"`{path}`: `{line.strip()}`" for line in lines if "pragma: no mutate" in line]


def main() -> int:
    rows, total = [], Counter[str]()
    for path in mutated_files():
        counts = tally(path)
        total += counts
        mutants = sum(counts.values())
        share = counts["killed"] / mutants if mutants else 0.0
        rows.append(
            f"| `{path}` | {mutants} | {counts['killed']} | {counts['survived']}"
            f" | {counts['no tests or other']} | {share:.0%} |"
        )
    mutants = sum(total.values())
    share = total["killed"] / mutants if mutants else 0.0
    pragmas = [line for path in mutated_files() for line in pragma_lines(path)]
    SUMMARY.write_text(
        "\n".join(
            [
                "# Mutation testing",
                "",
                "Written by `make mutation` (mutmut over the use cases, against `tests/unit`, the deploy",
                "gate's tier); do not edit by hand.",
                "",
                "| file | mutants | killed | survived | no unit test ran it | killed share |",
                "|---|---|---|---|---|---|",
                *rows,
                f"| all | {mutants} | {total['killed']} | {total['survived']} | {total['no tests or other']}"
                f" | {share:.0%} |",
                "",
                f"Target: {THRESHOLD:.0%} killed. `# pragma: no mutate` is allowed on message text only:",
                "",
                *([f"- {line}" for line in pragmas] or ["- none"]),
                "",
            ]
        )
    )
    print(f"killed {total['killed']} of {mutants} mutants ({share:.0%}); wrote {SUMMARY.relative_to(PROJECT_ROOT)}")
    return 0 if mutants and share >= THRESHOLD else 1


if __name__ == "__main__":
    sys.exit(main())
