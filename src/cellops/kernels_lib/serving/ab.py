"""A/B assignment: sticky per user (a hash of app + user id), random for anonymous requests."""

from __future__ import annotations

import hashlib
import random


def assign(app: str, user: str | None, split: float) -> str:
    """'b' for a ``split`` share of users, else 'a'; the same user always gets the same variant."""
    if user is None:
        return "b" if random.random() < split else "a"
    digest = hashlib.sha256(f"{app}\x00{user}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return "b" if u < split else "a"
