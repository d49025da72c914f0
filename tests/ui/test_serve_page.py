"""The chat page of `cellops serve` in Debian's chromium: sign in by URL fragment, talk, rate."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]


def test_chat_page_talks_rates_and_escapes(page, workspace) -> None:
    from cellops.kernels_lib import prompts
    from cellops.kernels_lib.prompts import feedback
    from cellops.kernels_lib.serving import ServeConfig, procs, records

    prompts.save("pagebot", "Answer briefly: {{ q }}", params={"max_tokens": 5}, workspace=workspace)
    started = procs.start(ServeConfig("pagebot", guard="off", port=0), workspace)
    s = started.server
    try:
        token = (s.dir / "token").read_text().strip()
        page.goto(f"{s.url}/#token={token}")
        page.wait_for_selector("#q")
        assert "token" not in page.url  # the fragment is dropped from the address bar at once
        hostile = "<img src=x onerror=\"window.pwned=1\"> what is 2+2?"
        page.fill("#q", hostile)
        page.press("#q", "Enter")
        page.wait_for_selector(".msg.assistant .rate button", timeout=120_000)
        assert page.inner_text(".msg.user .text") == hostile  # shown as text, not as HTML
        assert page.locator("#log img").count() == 0 and page.evaluate("window.pwned") is None
        answer = page.inner_text(".msg.assistant .text")
        [row] = records.rows(workspace, "pagebot")
        assert row["output"] == answer and row["input"] == hostile and row["client"].startswith("web-")
        page.fill(".msg.assistant textarea", "Four.")
        page.click(".msg.assistant button[data-rating='up']")
        page.wait_for_selector("text=thanks, recorded (up)")
        [fb] = feedback.list_feedback("pagebot", workspace)
        assert fb["rating"] == 1 and fb["correction"] == "Four." and fb["run_id"] == row["run_id"]
        assert token not in (s.dir / "server.log").read_text()
        assert not page.errors  # type: ignore[attr-defined]
    finally:
        procs.stop("pagebot", workspace)
