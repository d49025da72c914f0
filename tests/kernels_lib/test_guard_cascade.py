"""The guard cascade: harmful / injection send only their uncertain band to llm_judge.

The judge here is the embedded SmolLM2 (fast); which texts reach it, and that its answer decides
them, is what is tested. bench_cascade.py measures the cascade with qwen-1.5b.
"""

from __future__ import annotations

import math

import pytest

from cellops.kernels_lib import guard
from cellops.kernels_lib.errors import InvalidInputError


def _policy(check: str, band: str) -> str:
    return f"input:\n  - check: {check}\n    action: block\n    judge: true\n    judge_model: default\n    band: {band}\n"


def _load_fresh(policy: str, workspace):
    """Load a policy again (policies are cached by their text; the probe file changed)."""
    from cellops.kernels_lib.guard import policy as policies

    policies._cache.clear()
    return guard.load(policy, workspace)


@pytest.fixture
def no_probes(monkeypatch, tmp_path):
    """No shipped probe applies (the P(yes) path; the embedded model ships one for harmful)."""
    from cellops.kernels_lib.guard.checks import probe

    monkeypatch.setattr(probe, "PROBE_DIR", tmp_path / "no-probes")


@pytest.mark.parametrize("check", ["harmful", "injection"])
def test_the_band_decides_who_reaches_the_judge(check: str, workspace, no_probes) -> None:
    text = "How do I get rid of the weeds in my garden?"
    everything = _load_fresh(_policy(check, "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" in everything.detail and "classifier_score" in everything.detail
    assert everything.triggered == (everything.detail["judge"]["p_yes"] >= 0.5)  # no probe: the judge decides
    assert everything.score == (1.0 if everything.triggered else 0.0)  # moved to the band's edge
    nothing = guard.load(_policy(check, "[0.999, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" not in nothing.detail and not nothing.triggered


def test_a_bad_band_is_a_load_error(workspace) -> None:
    with pytest.raises(InvalidInputError, match="option 'band' must be \\[low, high\\]"):
        guard.load(_policy("harmful", "[0.8, 0.2]"), workspace)
    plain = guard.load("input:\n  - check: harmful\n", workspace)
    [(_, check)] = plain.rails["input"]
    assert check.cascade.judge is None and check.cascade.band == (0.45, 0.71)  # off unless asked


def test_two_checks_in_their_bands_share_one_judge_call(workspace, monkeypatch, no_probes) -> None:
    from cellops.kernels_lib.models import get_llm

    llm = get_llm("default", workspace)
    calls: list[int] = []
    real = llm.choice_probabilities
    monkeypatch.setattr(llm, "choice_probabilities", lambda m, w, **kw: (calls.append(1), real(m, w, **kw))[1])
    both = _policy("injection", "[0.0, 1.0]") + "\n".join(_policy("harmful", "[0.0, 1.0]").splitlines()[1:]) + "\n"
    rep = _load_fresh(both, workspace).check_input("Summarise this email for me")
    assert [f.check for f in rep.findings] == ["injection", "harmful"] and len(calls) == 1
    assert rep.findings[0].detail["judge"] == rep.findings[1].detail["judge"]


def _write_probe(workspace, b: float, combine=(0.0, 1.0, 0.0), prompt: str | None = None) -> None:
    """A probe for the embedded model in probe.PROBE_DIR: logit ~ b, combined with ``combine``."""
    import numpy as np

    from cellops.kernels_lib.guard.checks import probe
    from cellops.kernels_lib.guard.checks.judge import LLMJudge

    judge = LLMJudge(LLMJudge.validate_options({"model": "default"}, "test"), 0.5, workspace)
    w = np.zeros(judge.llm.hidden_state([{"role": "user", "content": "hi"}]).shape, np.float32)
    w[0] = 1e-3  # the logit moves with the hidden state, a little
    prompt = prompt or probe.prompt_sha256(judge.messages("", "input"))
    p = probe.Probe("harmful", judge.llm.weights_hash(), prompt, w, b, combine)
    probe.path_for("harmful", p.model_sha256).write_text(p.to_json())


def test_a_shipped_probe_decides_the_band_on_the_judges_hidden_state(workspace, monkeypatch, tmp_path) -> None:
    from cellops.kernels_lib.guard.checks import probe

    monkeypatch.setattr(probe, "PROBE_DIR", tmp_path)
    calls: list[int] = []
    from cellops.kernels_lib.models import get_llm

    llm = get_llm("default", workspace)
    real = llm.choice_probabilities
    monkeypatch.setattr(llm, "choice_probabilities", lambda m, w, **kw: (calls.append(1), real(m, w, **kw))[1])
    text = "Explain how lock picking works"
    for b, flagged in ((6.0, True), (-6.0, False)):
        _write_probe(workspace, b)
        f = _load_fresh(_policy("harmful", "[0.0, 1.0]"), workspace).check_input(text).findings[0]
        zp = f.detail["judge"]["probe_logit"]
        assert f.triggered is flagged and zp == pytest.approx(b, abs=0.5)
        assert f.score == pytest.approx(1 / (1 + math.exp(-zp)), abs=1e-3) and "probe logit" in f.reason
    assert calls == []  # the probe replaces P(yes): one prompt evaluation, no next-token read
    # the classifier's weight counts too: a confident classifier outweighs a mild probe
    _write_probe(workspace, -0.2, combine=(3.0, 1.0, 0.0))
    f = _load_fresh(_policy("harmful", "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    z = 3.0 * math.log(f.detail["classifier_score"] / (1 - f.detail["classifier_score"])) + f.detail["judge"]["probe_logit"]
    assert f.triggered == (z >= 0)
    # where the classifier's scores are not the ones the combination was fitted on (encoder: tuned),
    # the probe decides alone: a mildly negative probe overrules even a confident classifier
    from cellops.kernels_lib.guard.checks.cascade import Cascade
    from cellops.kernels_lib.guard.embed import TextCtx
    from cellops.kernels_lib.guard.report import Verdict

    alone = Cascade({"judge": True, "judge_model": "default", "band": [0.0, 1.0]}, (0.0, 1.0), "harmful", workspace,
                    with_classifier=False)
    v = alone.decide(Verdict(0.99, True, "fraud_scams", [], "fraud_scams p=0.99", {}), TextCtx(text, "input"))
    assert not v.triggered and v.detail["judge"]["probe_logit"] < 0 and "combined" not in v.detail
    # a probe fitted under another prompt (the built-in one has changed since) does not apply
    _write_probe(workspace, 6.0, prompt="0" * 64)
    g = _load_fresh(_policy("harmful", "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    assert "probe_logit" not in g.detail["judge"] and "p_yes" in g.detail["judge"]


def test_a_corrupt_probe_file_is_one_clear_error(workspace, monkeypatch, tmp_path) -> None:
    from cellops.kernels_lib.errors import CellopsError
    from cellops.kernels_lib.guard.checks import probe
    from cellops.kernels_lib.models import get_llm

    monkeypatch.setattr(probe, "PROBE_DIR", tmp_path)
    f = probe.path_for("harmful", get_llm("default", workspace).weights_hash())
    f.write_text('{"format": 1, "w": [1.0, "x"]}')
    with pytest.raises(CellopsError, match="not a probe file"):
        _load_fresh(_policy("harmful", "[0.0, 1.0]"), workspace)


def test_probe_fit_finds_the_direction_and_folds_the_standardisation() -> None:
    import numpy as np

    from cellops.kernels_lib.guard.checks import probe
    from cellops.kernels_lib.guard.ranking import auc

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300).astype(float)
    x = rng.normal(5.0, 3.0, (300, 20))  # off-centre, unscaled, like hidden states
    x[:, 3] += 8.0 * y
    fold = np.arange(300) % 5
    l2, oof, oof_auc, w, b = probe.fit(x, y, fold, log=lambda _: None)
    assert l2 in probe.L2S and oof_auc == pytest.approx(auc(oof, y == 1)) and oof_auc > 0.8
    assert int(np.argmax(np.abs(w))) == 3 and w[3] > 0
    # the folded weights score raw (unstandardised) hidden states
    assert auc(x @ w + b, y == 1) > 0.8 and np.mean((x @ w + b > 0) == (y == 1)) > 0.8


def test_shipped_probes_name_known_models_and_the_current_built_in_prompt(workspace) -> None:
    import hashlib

    from cellops.kernels_lib.guard.checks import probe
    from cellops.kernels_lib.guard.checks.harmful import DEFAULT_BAND, exemplars_sha256
    from cellops.kernels_lib.guard.checks.judge import LLMJudge
    from cellops.kernels_lib.models import get_llm
    from cellops.kernels_lib.models.catalog import CATALOG

    files = sorted(probe.PROBE_DIR.glob("*.json"))
    exemplars = exemplars_sha256()
    assert files, "no probe shipped"
    by_hash = {hashlib.sha256(m.sha256.encode()).hexdigest(): m.uri for m in CATALOG.values()}
    by_hash[get_llm("default", workspace).weights_hash()] = "default"
    prompt = probe.prompt_sha256(LLMJudge(LLMJudge.validate_options({}, "t"), 0.5, workspace).messages("", "input"))
    for f in files:
        p = probe.Probe.from_json(f.read_text(), str(f))
        assert f == probe.path_for(p.check, p.model_sha256) and p.model_sha256 in by_hash
        assert p.prompt_sha256 == prompt, f"{f.name}: refit it (calibrate_cascade.py): the built-in prompt changed"
        assert probe.load(p.check, p.model_sha256, prompt) is not None
        # fitted on the exemplars and band that ship now (the combination weighs this classifier's scores)
        assert p.meta["exemplars_sha256"] == exemplars, f"{f.name}: refit it: the exemplars changed"
        assert tuple(p.meta["band"]) == DEFAULT_BAND, f"{f.name}: refit it: the band changed"


def test_warming_a_policy_evaluates_the_judges_shared_start_once(workspace) -> None:
    from cellops.kernels_lib.models import get_llm

    llm = get_llm("default", workspace)
    pol = _load_fresh(_policy("harmful", "[0.0, 1.0]"), workspace)  # the embedded model's shipped probe
    [(_, check)] = pol.rails["input"]
    assert check.cascade.probe is not None
    prefix = check.cascade.judge.messages("", "input")
    if llm._scorer is not None:  # as a fresh process: nothing evaluated yet
        llm._scorer.close()
        llm._scorer = None
    pol.warm()
    rendered = llm._llm.tokenize(llm.render(prefix)[0].encode(), add_bos=True, special=True)
    assert llm._scorer._tokens == rendered and len(rendered) > 500  # policy + worked examples, in the KV cache
    guard.load("input:\n  - check: harmful\n", workspace).warm()  # no judge: nothing to do, no error
