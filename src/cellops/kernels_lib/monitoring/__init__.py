"""Monitoring of served apps: dashboard figures, drift and A/B tests, alert rules.

    from cellops.kernels_lib import monitoring
    monitoring.monitor("support")              # dashboard (text/plain + static HTML)
    monitoring.figures("support")["drift"]     # the same figures as JSON
    monitoring.check("support", "rules.yaml")  # alert rules -> verdicts
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from ..errors import InvalidInputError

__all__ = ["check", "figures", "monitor", "parse_reference", "parse_since"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


def parse_since(text: str | None) -> float | None:
    """'30m', '2h', '1d', an ISO date/time or a unix time -> unix time (None stays None)."""
    if text is None or text == "":
        return None
    m = _AGO.match(text.strip())
    if m:
        return time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInputError(f"--since {text!r}: use 30m, 2h, 1d, an ISO date (2026-12-01T10:00) or a unix time") from None


def parse_reference(text: str | int) -> int | str:
    """``--reference``: a request count (``50``) or a dataset version (``questions@2[:test]``)."""
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    if not value or "@" not in value:
        raise InvalidInputError(f"--reference {value!r}: give a request count (50) or a dataset version NAME@V[:SPLIT]")
    return value


def monitor(*args: Any, **kwargs: Any) -> Any:
    from .dashboard import monitor as _monitor

    return _monitor(*args, **kwargs)


def figures(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from .dashboard import figures as _figures

    return _figures(*args, **kwargs)


def check(*args: Any, **kwargs: Any) -> Any:
    from .alerts import check as _check

    return _check(*args, **kwargs)
