"""Does fine-tuning the guard's encoder help the harmful check? (``encoder: tuned``)

The harmful check's classifier is a logistic regression over frozen MiniLM embeddings plus intent
cues and word n-grams (guard/checks/harmful.py). MiniLM embeds topic more than intent, which is
why the cues and n-grams are there. ``encoder: tuned`` fine-tunes the encoder itself on the same
exemplars (guard/tuned_encoder.py: mean pooling, a linear head, class-weighted binary
cross-entropy). This bench scores the JailbreakBench dev rows, by half as bench_cascade.py splits
them (a: the half used for development, b: held back):

  frozen + logreg           the frozen embedding alone (what the cues and n-grams add to)
  current classifier        the shipped features: frozen embedding + cues + n-grams (encoder: base)
  tuned encoder, epoch N    the same features on the fine-tuned embedding (encoder: tuned at N epochs)

Every arm trains on the exemplars only (never on a dev row). Threshold-free figures: AUC and recall
at 5% benign FPR. ``--judge-cache FILE`` (a bench_cascade.py ``--cache`` file of one judge) adds
the judge's P(yes) and its log-odds plus 0.25 x the tuned classifier's (the weight from the two
scores' spread, not fitted). Seeded; on this CPU the epochs' figures repeat exactly.

    .venv/bin/python benchmarks/bench_guard_encoder.py [--epochs 3] [--lr 3e-5] [--judge-cache FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _load import LoadWatch
from bench_cascade import SHARED, dev_rows


def report(name: str, score: np.ndarray, rows: list[dict]) -> None:
    from cellops.kernels_lib.guard.ranking import auc, recall_at_fpr

    y = np.array([r["label"] != "benign" for r in rows])
    line = f"{name:34}"
    for h in ("a", "b", "all"):
        m = np.array([h == "all" or r["half"] == h for r in rows])
        line += f"  {h}: {auc(score[m], y[m]):.3f} / {recall_at_fpr(score[m], y[m]):.2f}"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--judge-cache", default=None, help="bench_cascade.py --cache file with the judge's P(yes)")
    args = ap.parse_args()
    if not (SHARED / "guard" / "harmful_benign_dev.jsonl").exists():
        sys.exit(f"bench_guard_encoder: the dev guard set is not here ({SHARED / 'guard'}); nothing to score")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cellops.kernels_lib.guard.checks.harmful import L2, NgramTfidf, features, load_exemplars
    from cellops.kernels_lib.guard.embed import exemplar_matrix, train_logreg

    ex = load_exemplars()
    texts = [r["text"] for r in ex]
    y = np.array([0.0 if r["label"] == "benign" else 1.0 for r in ex])
    rows = dev_rows("all")
    dev = [r["text"] for r in rows]
    print(f"{len(ex)} exemplars ({int(y.sum())} flagged), {len(rows)} dev rows; AUC / recall at 5% benign FPR")
    tfidf = NgramTfidf(texts)
    frozen_ex, frozen_dev = exemplar_matrix(texts), exemplar_matrix(dev)
    w, b = train_logreg(frozen_ex, y, l2=L2)
    report("frozen + logreg", frozen_dev @ w + b, rows)
    w, b = train_logreg(features(texts, frozen_ex, tfidf, True), y, l2=L2)
    report("current classifier", features(dev, frozen_dev, tfidf, True) @ w + b, rows)

    from dataclasses import replace

    from cellops.kernels_lib.guard.tuned_encoder import RECIPE, fine_tune

    recipe = replace(RECIPE, epochs=args.epochs, lr=args.lr, seed=args.seed)
    tuned = {}
    t0 = time.perf_counter()

    def on_epoch(epoch: int, st) -> None:  # noqa: ANN001 (a SentenceTransformer)
        tuned_ex, tuned_dev = (st.encode(t, batch_size=64, normalize_embeddings=True) for t in (texts, dev))
        w, b = train_logreg(features(texts, tuned_ex, tfidf, True), y, l2=L2)
        tuned["score"] = features(dev, tuned_dev, tfidf, True) @ w + b
        print(f"epoch {epoch}: {time.perf_counter() - t0:.0f} s since the start", flush=True)
        report(f"tuned encoder, epoch {epoch}", tuned["score"], rows)

    fine_tune(texts, y, recipe, on_epoch=on_epoch)
    if args.judge_cache:
        from cellops.kernels_lib.guard.checks.cascade import logit

        cached = [json.loads(line) for line in Path(args.judge_cache).read_text().splitlines() if line.strip()]
        judges = {(d["model"], d["prompt"]) for d in cached}
        p = {d["text"]: d["p_yes"] for d in cached}
        if len(judges) > 1:
            print(f"judge cache: {len(judges)} judges (model, prompt) in one file; give a file of one")
        elif all(t in p for t in dev):
            judge = np.array([logit(p[t]) for t in dev])
            report("judge P(yes)", judge, rows)
            report("judge + 0.25 * tuned", judge + 0.25 * tuned["score"], rows)
        else:
            print("judge cache: not every dev row is in it (run bench_cascade.py --roc --cache FILE first)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with LoadWatch():
        main()
