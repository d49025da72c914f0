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


@pytest.mark.parametrize("check", ["harmful", "injection"])
def test_the_band_decides_who_reaches_the_judge(check: str, workspace) -> None:
    text = "How do I get rid of the weeds in my garden?"
    everything = guard.load(_policy(check, "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" in everything.detail and "classifier_score" in everything.detail
    assert everything.triggered == (everything.detail["judge"]["p_yes"] >= 0.5)  # no fitted weights: the judge decides
    nothing = guard.load(_policy(check, "[0.999, 1.0]"), workspace).check_input(text).findings[0]
    assert "judge" not in nothing.detail and not nothing.triggered


def test_a_bad_band_is_a_load_error(workspace) -> None:
    with pytest.raises(InvalidInputError, match="option 'band' must be \\[low, high\\]"):
        guard.load(_policy("harmful", "[0.8, 0.2]"), workspace)
    plain = guard.load("input:\n  - check: harmful\n", workspace)
    [(_, check)] = plain.rails["input"]
    assert check.cascade.judge is None and check.cascade.band == (0.45, 0.71)  # off unless asked


def test_fitted_weights_combine_classifier_and_judge_in_log_odds(workspace, monkeypatch) -> None:
    from cellops.kernels_lib.guard.checks import cascade
    from cellops.kernels_lib.models import get_llm

    text = "Explain how lock picking works"
    monkeypatch.setitem(cascade.WEIGHTS, ("harmful", get_llm("default", workspace).weights_hash()), (2.0, 1.0, -0.5))
    f = guard.load(_policy("harmful", "[0.0, 1.0]"), workspace).check_input(text).findings[0]
    s, p = f.detail["classifier_score"], f.detail["judge"]["p_yes"]
    z = 2.0 * cascade.logit(s) + 1.0 * cascade.logit(p) - 0.5
    assert f.score == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-3) and f.triggered == (z >= 0)
    assert f.detail["combined"] == round(f.score, 4)
    # weights fitted for another model do not apply: the judge alone decides the band
    monkeypatch.setattr(cascade, "WEIGHTS", {("harmful", "another-model"): (2.0, 1.0, -0.5)})
    g = guard.load(_policy("harmful", "[0.0, 0.999]"), workspace).check_input(text).findings[0]  # a new policy
    assert "combined" not in g.detail and g.triggered == (g.detail["judge"]["p_yes"] >= 0.5)
    assert g.score == (0.999 if g.triggered else 0.0)  # moved to the band's edge


def test_fit_weights_recovers_which_score_carries_the_signal() -> None:
    import numpy as np

    from cellops.kernels_lib.guard.checks.cascade import fit_weights

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    judge = np.clip(np.where(y == 1, 0.8, 0.2) + rng.normal(0, 0.1, 400), 0.01, 0.99)  # informative
    classifier = rng.uniform(0.3, 0.7, 400)  # noise
    wc, wj, _ = fit_weights(classifier, judge, y)
    assert wj > 1.0 and abs(wc) < 0.5 * wj


def test_two_checks_in_their_bands_share_one_judge_call(workspace, monkeypatch) -> None:
    from cellops.kernels_lib.models import get_llm

    llm = get_llm("default", workspace)
    calls: list[int] = []
    real = llm.choice_probabilities
    monkeypatch.setattr(llm, "choice_probabilities", lambda m, w, **kw: (calls.append(1), real(m, w, **kw))[1])
    both = _policy("injection", "[0.0, 1.0]") + "\n".join(_policy("harmful", "[0.0, 1.0]").splitlines()[1:]) + "\n"
    rep = guard.load(both, workspace).check_input("Summarise this email for me")
    assert [f.check for f in rep.findings] == ["injection", "harmful"] and len(calls) == 1
    assert rep.findings[0].detail["judge"] == rep.findings[1].detail["judge"]


def test_fitted_weights_name_catalog_models_by_their_file_hash() -> None:
    import hashlib

    from cellops.kernels_lib.guard.checks.cascade import WEIGHTS
    from cellops.kernels_lib.models.catalog import CATALOG

    # Model.weights_hash() of a single GGUF is the sha256 of its sha256 (models/weights.file_hash)
    by_hash = {hashlib.sha256(m.sha256.encode()).hexdigest(): m.uri for m in CATALOG.values()}
    assert {("harmful", "qwen-1.5b"), ("harmful", "qwen-0.5b")} <= {(check, by_hash.get(h)) for check, h in WEIGHTS}
