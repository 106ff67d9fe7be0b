"""A random SECRET_KEY per install, kept in the state directory when none is configured."""

import contextlib
import os
import secrets
import sys
from pathlib import Path

KEY_FILE = "secret_key"


def install_secret_key(state_dir: Path) -> str:
    """This install's key: read from ``state_dir/secret_key``, or created there (0600) by the
    first process that needs it; exit with one clear line when it cannot be kept."""
    path = state_dir / KEY_FILE
    try:
        return _read(path) or _create(path)
    except OSError as exc:
        sys.exit(
            f"SECRET_KEY is not set and no key could be kept in {path} ({exc.strerror}): "
            "set SECRET_KEY or STATE_DIR (see .env.example)."
        )


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _create(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written under a temporary name, then linked into place: a process starting at the same
    # time either wins the link or reads the winner's complete key, never half of one.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read(path)
