"""%serve start|list|logs|stop: a detached server that outlives the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from IPython.core.error import UsageError

pytestmark = pytest.mark.slow


def test_serve_start_outlives_its_kernel_then_list_logs_stop(ip, workspace, tmp_path) -> None:
    from cellops.kernels_lib import prompts
    from cellops.kernels_lib.serving import auth, procs

    prompts.save("greeter", "Greet {{ name }} in three words.", params={"max_tokens": 4}, workspace=workspace)
    # a "kernel" that starts the server and dies at once
    code = ("import os; from cellops.kernels_lib.serving import ServeConfig, procs; "
            "procs.start(ServeConfig('greeter', guard='off', port=0)); os._exit(0)")
    kernel = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, CELLOPS_HOME=str(workspace.root)),
                            capture_output=True, text=True, timeout=300)
    assert kernel.returncode == 0, kernel.stderr
    try:
        server = procs.get("greeter", workspace)
        assert server.alive and server.healthy()
        assert os.getsid(server.pid) != os.getsid(0)  # its own session: a dying kernel's group is not its
        token, created = auth.load_token(workspace, "greeter", None)
        assert not created and (auth.token_path(workspace, "greeter").stat().st_mode & 0o777) == 0o600
        r = httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
                       json={"model": "greeter", "messages": [{"role": "user", "content": "Ada"}]}, timeout=120)
        assert r.status_code == 200, r.text

        listing = ip.run_line_magic("serve", "list")._repr_mimebundle_()
        line = next(ln for ln in listing["text/plain"].splitlines() if ln.startswith("greeter"))
        assert "running" in line and str(server.spec["port"]) in line and str(server.pid) in line
        assert line.split()[-1] == "1"  # requests served
        assert "<table>" in listing["text/html"]
        with pytest.raises(UsageError, match="already running"):
            ip.run_line_magic("serve", "start greeter --guard off")
        assert "cellops serve: greeter" in ip.run_line_magic("serve", "logs greeter").text
        ip.run_line_magic("serve", "stop greeter")
        assert not procs.get("greeter", workspace).alive
        assert "stopped" in ip.run_line_magic("serve", "list")._repr_mimebundle_()["text/plain"]
    finally:
        procs.stop("greeter", workspace)
    with pytest.raises(UsageError, match="no server named"):
        ip.run_line_magic("serve", "logs nobody")
    with pytest.raises(UsageError, match="usage: %serve"):
        ip.run_line_magic("serve", "restart greeter")


def test_monitor_magic_shows_the_dashboard_and_one_line_errors(ip, workspace) -> None:
    from cellops.kernels_lib.serving import records

    for i, (status, lat) in enumerate((("ok", 0.2), ("ok", 0.4), ("error", 0.1))):
        records.insert(workspace, records.RequestRow(f"chatcmpl-{i}", "shop", "a", "shop@1", f"u{i}", status, lat,
                                                     False, completion_tokens=3, input="hi", output="hello"))
    board = ip.run_line_magic("monitor", "shop --since 1h -o t_board")
    out = board._repr_mimebundle_()
    assert out["text/plain"].startswith("shop: 3 requests") and "not enough data" in out["text/plain"]
    assert ip.user_ns["t_board"].data["overall"]["error_rate"] == pytest.approx(1 / 3)
    assert ip.user_ns["t_board"].data["overall"]["latency_p50_s"] == pytest.approx(0.3)
    assert "<table>" in out["text/html"]
    with pytest.raises(UsageError, match="no served requests for app 'nope'; apps with traffic: shop"):
        ip.run_line_magic("monitor", "nope")
    with pytest.raises(UsageError, match="--since"):
        ip.run_line_magic("monitor", "shop --since yesterday")
