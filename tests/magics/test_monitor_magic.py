"""%monitor in a live kernel: a widget that refreshes while the app takes traffic, stops by itself
(bounded) and when the cell is re-run; the static HTML elsewhere (papermill, nbconvert)."""

from __future__ import annotations

import time

import pytest

from cellops.kernels_lib.monitoring.dashboard import Dashboard

pytestmark = pytest.mark.slow
WIDGET = "application/vnd.jupyter.widget-view+json"


def _wait(pred, timeout: float = 60) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_live_monitor_refreshes_with_traffic_and_stops(ip, workspace, monkeypatch) -> None:
    from starlette.testclient import TestClient

    from cellops.kernels_lib import prompts
    from cellops.kernels_lib.serving import ServeConfig, auth, create_app
    from cellops.magics.context import MagicContext

    prompts.save("tiny", "Say {{ word }}.", params={"max_tokens": 2}, workspace=workspace)
    app = create_app(ServeConfig("tiny@1", guard="off", workspace=str(workspace.root)))
    token, _ = auth.load_token(workspace, "tiny", None)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"

        def ask() -> None:
            r = c.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text

        ask()
        static = ip.run_line_magic("monitor", "tiny")  # not a live kernel: the static dashboard
        assert isinstance(static, Dashboard) and "1 requests" in static._repr_mimebundle_()["text/plain"]

        monkeypatch.setattr(MagicContext, "live", property(lambda self: True))
        view = ip.run_line_magic("monitor", "tiny --every 0.2 --live-for 120")
        bundle = view._repr_mimebundle_()
        assert WIDGET in bundle and "1 requests" in bundle["text/html"]  # widget, and HTML where it can't render
        assert view.running and "1 requests" in view.widget.value
        ask()
        _wait(lambda: "2 requests" in view.widget.value)  # refreshed by itself, no cell run
        assert view.refreshes == 1 and "live" in view.status.value

        again = ip.run_line_magic("monitor", "tiny --every 0.2 --live-for 120")  # the cell re-run
        view.join(10)
        assert not view.running and "re-run" in view.status.value and again.running
        ask()
        _wait(lambda: "3 requests" in again.widget.value)
        assert "2 requests" in view.widget.value  # the stopped view keeps its last figures

        short = ip.run_line_magic("monitor", "tiny --every 0.1 --live-for 0.5")  # bounded: stops by itself
        short.join(10)
        assert not short.running and "time limit" in short.status.value and not again.running
