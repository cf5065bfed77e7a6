"""The documentation a newcomer walks into: a README that fits on a screen, whose
layout table names the tree on disk; every link in it and in docs/ resolving; and
every docs path the code cites existing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "local_supabase" / "README.md",
    ROOT / "bench" / "README.md",
]
CITED = re.compile(r"(?<![\w/.])((?:docs|bench|local_supabase)/[\w.-]+\.md|README\.md)")
LINK = re.compile(r"\]\(([^)#\s]+)")
# bench/results.md is written by `make bench`, and committed with the figures it shows.
CODE = [
    *ROOT.glob("certification_expiry/*.py"),
    *ROOT.glob("local_supabase/**/*.py"),
    *ROOT.glob("tools/*.py"),
    *ROOT.glob("bench/*.py"),
    ROOT / "cloudbuild.yaml",
    ROOT / "Makefile",
    ROOT / ".squawk.toml",
    ROOT / "pyproject.toml",
]


def test_the_readme_fits_on_a_screen():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def layout_paths() -> set[Path]:
    """The paths the README's layout table names; a bare file name lives beside
    the file named before it in the same row (`certification_expiry/job.py`, `run_state.py`)."""
    table = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n\n", 2)[1]
    paths = set()
    for row in table.splitlines()[2:]:
        folder = ROOT
        for name in re.findall(r"`([^`]+)`", row.split("|")[1]):
            path = ROOT / name if "/" in name else folder / name
            folder = ROOT if name.endswith("/") else path.parent
            paths.add(path)
    return paths


def test_the_readme_layout_is_the_tree_on_disk():
    named = layout_paths()
    assert not {str(path.relative_to(ROOT)) for path in named if not path.exists()}
    modules = {path for path in (ROOT / "certification_expiry").iterdir() if path.suffix in (".py", ".json")}
    assert not {path.name for path in modules - named if path.name != "__init__.py"}, "modules the layout omits"
    # Folders that .gitignore keeps out of the repository (node_modules/) are installed state.
    ignored = {line.strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.endswith("/")}
    folders = {
        path for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".") and path.name not in ignored
    }
    covered = {folder for folder in folders for path in named if folder in (path, *path.parents)}
    assert not {folder.name for folder in folders - covered}, "folders the layout omits"


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_of_the_docs_resolves(document):
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        assert (document.parent / target).exists(), f"{document.relative_to(ROOT)} links to a missing {target}"


def test_every_document_the_code_cites_exists_and_no_code_cites_a_readme_section():
    for path in CODE:
        text = path.read_text()
        for cited in CITED.findall(text):
            assert (ROOT / cited).exists(), f"{path.relative_to(ROOT)} cites a missing {cited}"
        assert not re.search(r"README(?!\.md\")[^\n]{0,3}\"", text), f"{path.relative_to(ROOT)} cites a README section"


# What rots: a code line number (`job.py:123`, "line 123"), or a measured figure in a
# comment ("24 ms at 200,000"). Docs link to bench/results.md for figures instead.
ROTTING = re.compile(r"\.py:\d+|\bline \d+|\"line\": \d+|\b\d[\d,.]* ?(?:ms|s|MiB) at \d")
# Comments, docstrings and prose: the code, its SQL and every document a person reads.
# Committed migrations are left out: they never change (supabase/migrations.sha256).
WRITTEN = sorted(
    {
        *CODE,
        *DOCS,
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("supabase/tests/database/*.sql"),
        ROOT / "main.py",
        ROOT / "requirements.in",
        ROOT / "requirements-dev.in",
    }
)


def rotting_citations(text: str) -> list[str]:
    return [match.group(0) for match in ROTTING.finditer(text)]


@pytest.mark.parametrize("path", WRITTEN, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_line_number_or_measured_figure_is_written_down_where_it_would_rot(path):
    if path == Path(__file__):
        return
    assert rotting_citations(path.read_text()) == []


def test_a_planted_line_number_citation_is_found():
    assert rotting_citations("see certification_expiry/job.py:212 for the retry") == [".py:212"]
    assert rotting_citations("# the loop at line 88 retries") == ["line 88"]
    assert rotting_citations('{"sourceLocation": {"line": 256}}') == ['"line": 256']
    assert rotting_citations("-- a scan took 24 ms at 200,000 mentors") == ["24 ms at 2"]
