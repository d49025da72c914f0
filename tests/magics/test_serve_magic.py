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
