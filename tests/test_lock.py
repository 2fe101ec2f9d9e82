"""The lock files pin every dependency with hashes, agree with requirements*.txt and with what
is installed, pin torch to the local CPU wheel, and are what the Makefile installs from."""

import hashlib
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PAIRS = {  # what we want -> what is installed
    "requirements.txt": "requirements.lock",
    "requirements-dev.txt": "requirements-dev.lock",
    "requirements-models.txt": "requirements-models.lock",
}
LOCAL_TORCH = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
ENTRY = re.compile(r"^([\w][\w.-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.M)


def wanted(name: str) -> list[Requirement]:
    """The requirements of a requirements file, following its -r includes."""
    found = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += wanted(line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, [sha256, ...])} of a lock file."""
    text = (ROOT / name).read_text()
    entries = {}
    for match in ENTRY.finditer(text):
        hashes = re.findall(r"sha256:([0-9a-f]{64})", match.group(3))
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    pinned = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(pinned) == len(entries), f"{name}: a line that is not name==version + hashes"
    return entries


@pytest.mark.parametrize("source", sorted(PAIRS))
def test_every_requirement_is_locked_with_hashes(source):
    lock = locked(PAIRS[source])
    assert lock and all(hashes for _, hashes in lock.values()), f"{PAIRS[source]}: unhashed"
    for requirement in wanted(source):
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in {PAIRS[source]}: run `make lock`"
        version = lock[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{PAIRS[source]} has {name}=={version}, {source} wants {requirement}: run `make lock`"
        )


def test_the_runtime_pins_are_the_same_in_both_locks():
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {k: v[0] for k, v in runtime.items()} == {k: dev[k][0] for k in runtime}


def test_torch_is_locked_to_the_local_cpu_wheel():
    version, hashes = locked("requirements.lock")["torch"]
    assert version == "2.13.0+cpu" and len(hashes) == 1  # that one file, no CUDA build
    if LOCAL_TORCH.exists():
        digest = hashlib.sha256()
        with open(LOCAL_TORCH, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        assert hashes == [digest.hexdigest()]


def test_installed_packages_are_the_locked_versions():
    """What the suite runs on is what the lock installs (a requirement changed without `make
    lock`, or a venv installed otherwise, shows here)."""
    lock = locked("requirements-dev.lock") | locked("requirements-models.lock")
    for requirement in wanted("requirements-dev.txt") + wanted("requirements-models.txt"):
        name = canonicalize_name(requirement.name)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. a tool only `make lock` uses, in a venv made before it was added
        assert installed == lock[name][0], f"{name} {installed} installed, locked {lock[name][0]}"


def test_the_makefile_installs_only_from_the_locks_with_hashes():
    installs = [
        line.strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.strip().startswith("$(PIP)")
    ]
    assert installs, "no install lines found in the Makefile"
    for line in installs:
        assert "--require-hashes" in line and re.search(r"-r \S+\.lock\b", line), line
