"""Model artifacts on disk: one file per trained version, with a checksum beside it."""

import hashlib
import pickle
from pathlib import Path
from typing import Any


def save(obj: Any, directory: Path, name: str) -> Path:
    """Pickles `obj` to directory/name.pkl (written aside, then renamed), sha256 beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pkl"
    tmp = path.with_suffix(".tmp")
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.write_bytes(data)
    tmp.replace(path)
    path.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest())
    return path


def load(path: str | Path) -> Any:
    """The object saved at `path`; refuses a file whose checksum does not match."""
    path = Path(path)
    data = path.read_bytes()
    expected = path.with_suffix(".sha256")
    if expected.exists() and expected.read_text().strip() != hashlib.sha256(data).hexdigest():
        raise ValueError(f"artifact {path} does not match its checksum")
    return pickle.loads(data)  # noqa: S301 (our own artifacts, checksummed)
