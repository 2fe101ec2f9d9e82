"""The READMEs' commands run as written from a checkout: `make demo` installs into .venv, so a
bare `python manage.py …` (the system's Python, without Django) fails where `.venv/bin/python
manage.py …` works."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", ROOT / "bench" / "README.md"]
# A command, not a mention: `manage.py up` names the command; `python manage.py up` runs it.
BARE = re.compile(r"(?<![\w./-])(?:python3?|python3\.\d+)\s+manage\.py")
# The production commands run the virtual environment's programs, not whatever is on the PATH.
BARE_PROGRAM = re.compile(r"^\s*(?:[A-Z_]+=\S+\s+)*(?:celery|gunicorn|pip)\s", re.MULTILINE)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_manage_py_commands_use_the_virtual_environment(readme):
    text = readme.read_text()
    bare = [text[: m.start()].count("\n") + 1 for m in BARE.finditer(text)]
    assert not bare, f"{readme.name}: `python manage.py` on lines {bare}: .venv/bin/python"
    programs = [text[: m.start()].count("\n") + 1 for m in BARE_PROGRAM.finditer(text)]
    assert not programs, f"{readme.name}: lines {programs}: .venv/bin/<program>"


def test_the_readme_still_shows_commands():
    """The check above finds nothing in a README that says no command at all."""
    assert ".venv/bin/python manage.py" in (ROOT / "README.md").read_text()
