"""Fixtures shared by the magic tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class LiveViews:
    """What the live trace views of a cell showed: every value each widget took."""

    ip: Any
    views: list[Any] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # widget model ids (gone once a view is closed)
    states: list[tuple[list[str], bool]] = field(default_factory=list)  # (rows shown, call running)

    def running(self) -> list[list[str]]:
        """The rows shown while the call's root span had not ended yet."""
        return [names for names, live in self.states if live]

    def displayed(self, model_id: str) -> bool:
        """Whether the widget with ``model_id`` was displayed in the cell."""
        return any(o["data"].get("application/vnd.jupyter.widget-view+json", {}).get("model_id") == model_id
                   for o in self.ip.display_pub.outputs)


@pytest.fixture
def live_views(ip: Any, monkeypatch: pytest.MonkeyPatch) -> LiveViews:
    """A live kernel (``ctx.live`` true, displays captured) whose live trace views are recorded."""
    from IPython.core.displaypub import CapturingDisplayPublisher

    from cellops.magics.context import MagicContext
    from cellops.widgets import trace_view

    monkeypatch.setattr(MagicContext, "live", property(lambda self: True))
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    seen, real = LiveViews(ip), trace_view.live_trace_view

    def recorded(live: bool) -> trace_view.LiveTraceView | None:
        view = real(live)
        assert view is not None
        seen.views.append(view)
        seen.ids.append(view.widget.model_id)
        view.widget.observe(lambda ch: seen.states.append(
            (re.findall(r"class='wf-name[^']*'[^>]*>([^<]*)<", ch["new"]), view.trace.root.end is None)), "value")
        return view

    monkeypatch.setattr(trace_view, "live_trace_view", recorded)
    return seen
