"""grad_norm under a real DeepSpeed ZeRO-0 fp32 engine (the %%finetune CPU path): the engine
reports the pre-clip norm and still clips, with clipping on and off. One subprocess (its own
torch.distributed world of one gloo rank), a 4x3 linear layer, plain SGD with lr 1 so that a
step moves the weights by exactly the clipped gradient."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from testsupport import free_port

pytestmark = pytest.mark.slow

SCRIPT = r'''
import json, torch, deepspeed
from cellops.kernels_lib.train.grad_norm import keep_grad_norm

out = []
for clip in (0.5, 0.0):
    torch.manual_seed(0)
    model, ref = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    ref.load_state_dict(model.state_dict())
    x = torch.randn(2, 4)
    (ref(x).pow(2).sum() * 10).backward()  # the gradient, computed without DeepSpeed
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in ref.parameters()))
    engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                                      config={"train_batch_size": 2, "gradient_clipping": clip,
                                              "zero_optimization": {"stage": 0}})
    kept = keep_grad_norm(engine)
    before = [p.detach().clone() for p in model.parameters()]
    engine.backward(engine(x).pow(2).sum() * 10)
    engine.step()
    moved = torch.sqrt(sum((b - p.detach()).pow(2).sum() for b, p in zip(before, model.parameters())))
    got = engine.get_global_grad_norm()
    out.append({"clip": clip, "kept": kept, "norm": float(norm), "moved": float(moved),
                "reported": None if got is None else float(got)})
print("RESULT " + json.dumps(out))
'''


def test_zero0_fp32_engine_reports_the_preclip_norm_and_still_clips(tmp_path) -> None:
    env = os.environ | {"DS_ACCELERATOR": "cpu", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    clipped, unclipped = json.loads(lines[0].removeprefix("RESULT "))
    assert clipped["kept"] and unclipped["kept"]
    assert clipped["norm"] > 1.0  # large enough for a clip at 0.5 to bite
    assert clipped["reported"] == pytest.approx(clipped["norm"], rel=1e-5)  # before clipping
    assert clipped["moved"] == pytest.approx(0.5, rel=1e-4)  # ... and the step was still clipped
    assert unclipped["reported"] == pytest.approx(unclipped["norm"], rel=1e-5)
    assert unclipped["moved"] == pytest.approx(unclipped["norm"], rel=1e-4)  # nothing scaled
