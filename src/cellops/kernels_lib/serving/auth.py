"""Bearer tokens: every API call needs one; there is no unauthenticated mode.

``--token-file F`` reads the token from F (first line). Without it the app's token lives in the
workspace (``serve/NAME/token``, mode 0600), generated on first use; the caller prints it once,
when it is created. A token file readable by others or owned by someone else (a cloned
workspace) is refused. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from ..errors import InvalidInputError, NotFoundError
from ..workspace import Workspace


def token_path(ws: Workspace, app: str) -> Path:
    return ws.root / "serve" / app / "token"


def load_token(ws: Workspace, app: str, token_file: str | None) -> tuple[str, bool]:
    """(token, created): created is True only the first time a workspace token is generated."""
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except FileNotFoundError:
            raise NotFoundError(f"--token-file {path} does not exist; write a token into it first") from None
        except IndexError:
            token = ""
        if len(token) < 16:
            raise InvalidInputError(f"the token in {path} is shorter than 16 characters; use a long random one")
        return token, False
    path = token_path(ws, app)
    if path.exists():
        _refuse_foreign(path)
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "cellops-" + secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        os.link(tmp, path)  # two servers starting at once: the first token wins
        created = True
    except FileExistsError:
        created = False
    tmp.unlink()
    return path.read_text(encoding="utf-8").strip(), created


def _refuse_foreign(path: Path) -> None:
    """A token cellops made is this user's file with mode 0600; one that came in a cloned or
    copied workspace (git writes 0644) is known to whoever made it, so it protects nothing."""
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InvalidInputError(
            f"{path} was not made by cellops for you (mode {st.st_mode & 0o777:o}, owner uid {st.st_uid}): "
            "whoever wrote it knows the token; delete it (a new one is made and shown once) or pass --token-file")


def check(header: str | None, token: str) -> bool:
    """Is ``header`` ("Bearer TOKEN") the right token?"""
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())
