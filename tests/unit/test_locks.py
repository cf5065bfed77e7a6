"""The locks agree with what they are compiled from, without the network: every
direct dependency of requirements*.in is pinned exactly, within its range, with
hashes, and the development lock pins the runtime set as requirements.txt does.
`make lock` rewrites both when they disagree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def declared(path: Path) -> list[Requirement]:
    """The requirements an .in file names, following its `-r` includes."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += declared(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def pinned(path: Path) -> dict[str, str]:
    """name -> version of a compiled lock; each pin must carry at least one hash."""
    text = path.read_text()
    pins = {}
    for entry in re.split(r"\n(?=\S)", text):
        match = PIN.match(entry)
        if match is None:
            assert entry.startswith("#") or not entry.strip(), f"{path.name}: not a pin: {entry[:60]!r}"
            continue
        assert "--hash=sha256:" in entry, f"{path.name}: {match.group(1)} has no hash"
        pins[canonicalize_name(match.group(1))] = match.group(3)
    return pins


@pytest.mark.parametrize(
    ("source", "lock"), [("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt")]
)
def test_every_declared_dependency_is_pinned_within_its_range(source, lock):
    pins = pinned(ROOT / lock)
    for requirement in declared(ROOT / source):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {requirement.name}: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {requirement.name}=={pins[name]}, outside {requirement.specifier}: run make lock"
        )


def test_the_development_lock_pins_the_runtime_set_as_the_runtime_lock_does():
    runtime, development = pinned(ROOT / "requirements.txt"), pinned(ROOT / "requirements-dev.txt")
    assert {name: development.get(name) for name in runtime} == runtime
    assert "-r requirements.in" in (ROOT / "requirements-dev.in").read_text()


def test_everything_that_installs_installs_the_locks_with_their_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in makefile
    cloudbuild = (ROOT / "cloudbuild.yaml").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in cloudbuild
