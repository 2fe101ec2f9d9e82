"""Files that the embedded single-machine setup keeps in its data folder."""

import os
import secrets
from pathlib import Path


def stored_secret_key(data_dir: Path) -> str:
    """The secret key kept in `data_dir/secret_key`, generated on first use.

    Sessions and signed links stay valid across restarts because the key is written once and
    reused. Production sets SECRET_KEY in the environment instead.
    """
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(64)
    # Written aside, then linked into place: if two processes start at once, exactly one key wins
    # and neither ever reads a half-written file.
    tmp = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
