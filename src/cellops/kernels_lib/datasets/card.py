"""The dataset card: what a version holds and how good it is, as JSON and as text + escaped HTML.

Rows, format, schema, sources (with file hashes), splits, exact duplicates, label balance, text
lengths, a PII scan with the PII checks of the active guard policy (the built-in ``default``
when none is on; the card says which), bad rows with line numbers and reasons, and the run.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterator
from html import escape
from typing import Any

from .. import html
from ..workspace import Workspace, content_hash
from . import formats, sources

MAX_PII_ROWS = 5000  # rows scanned for PII; a bigger dataset says how many were scanned
MAX_LISTED = 50


def strings(rec: Any) -> Iterator[str]:
    """Every text value in a row (message contents, nested fields), in order."""
    if isinstance(rec, str):
        yield rec
    elif isinstance(rec, dict):
        for v in rec.values():
            yield from strings(v)
    elif isinstance(rec, list):
        for v in rec:
            yield from strings(v)


def duplicates(recs: list[Any]) -> dict[str, Any]:
    """Exact duplicate rows: how many, and (row, first row it repeats) pairs."""
    first: dict[str, int] = {}
    pairs: list[list[int]] = []
    for i, r in enumerate(recs, start=1):
        key = json.dumps(r, sort_keys=True)
        if key in first:
            pairs.append([i, first[key]])
        else:
            first[key] = i
    return {"count": len(pairs), "rows": pairs[:MAX_LISTED]}


def lengths(recs: list[Any]) -> dict[str, int]:
    n = [sum(len(s) for s in strings(r)) for r in recs]
    return {"min": min(n), "median": int(statistics.median(n)), "max": max(n)} if n else {}


def pii_policy(ws: Workspace) -> tuple[Any, bool, list[Any]]:
    """(policy with only its pii checks, is it the active one, pii items). Only the pii check is
    built: loading every check of a policy (embedder, classifiers) costs seconds a scan never uses."""
    from ..guard import ACTIVE_KEY
    from ..guard.policy import Policy, resolve_spec
    from ..guard.schema import PolicySpec

    ref = ws.get_state(ACTIVE_KEY)
    spec, ref = resolve_spec(ref or "default", ws)
    items = [c for rail in ("input", "output") for c in spec.rails.get(rail, ()) if c.check == "pii"][:1]
    policy = Policy(PolicySpec(spec.description, spec.max_chars, {"input": tuple(items)}), ref, ws)
    return policy, ws.get_state(ACTIVE_KEY) is not None, policy.rails["input"]


def pii_scan(recs: list[Any], ws: Workspace) -> dict[str, Any]:
    """Rows with PII per the policy's pii check (entity counts, row numbers)."""
    policy, active, items = pii_policy(ws)
    out: dict[str, Any] = {"policy": policy.ref, "active": active}
    if not items:
        return out | {"scanned": 0, "note": f"policy {policy.ref} has no pii check"}
    entities: Counter[str] = Counter()
    hit_rows: list[int] = []
    for i, r in enumerate(recs[:MAX_PII_ROWS], start=1):
        text = "\n".join(strings(r))
        if not text.strip():
            continue
        rep = policy.run_rail("input", text)
        found = [s.label for f in rep.findings if f.triggered for s in f.spans]
        if found:
            hit_rows.append(i)
            entities.update(found)
    return out | {"check": items[0][0].id, "action": items[0][0].action,
                  "scanned": min(len(recs), MAX_PII_ROWS), "rows_with_pii": len(hit_rows),
                  "entities": dict(entities.most_common()), "rows": hit_rows[:MAX_LISTED]}


def build_card(name: str, content: dict[str, Any], recs: list[Any], srcs: list[sources.Source],
               bad: list[dict[str, Any]], ws: Workspace) -> dict[str, Any]:
    return {
        "name": name, "hash": content_hash(content), "rows_sha256": content["rows_hash"], "rows": len(recs), "format": content["format"],
        "schema": formats.schema(recs), "sources": [s.to_dict() for s in srcs],
        "splits": content["splits"], "duplicates": duplicates(recs),
        "label_balance": formats.label_balance(recs), "lengths": lengths(recs),
        "pii": pii_scan(recs, ws), "bad_rows": bad[:MAX_LISTED], "bad_count": len(bad),
    }


def _pii_line(p: dict[str, Any]) -> str:
    who = f"{p.get('policy')}{'' if p.get('active') else ' (no policy active: built-in default)'}"
    if not p.get("scanned"):
        return f"not scanned: {p.get('note', '')}"
    ents = ", ".join(f"{k} {v}" for k, v in p.get("entities", {}).items()) or "none"
    rows = ", ".join(map(str, p.get("rows", [])[:20]))
    return (f"{p['rows_with_pii']} of {p['scanned']} rows ({ents}) under {who}"
            + (f"; rows {rows}" if rows else ""))


def summary_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) lines shared by the text and the HTML card."""
    dup = card["duplicates"]
    lab = "; ".join(f"{k}: " + ", ".join(f"{v} {n}" for v, n in c.items())
                    for k, c in card.get("label_balance", {}).items()) or "-"
    srcs = "; ".join(f"{s['source']} [{s['split']}] {s['rows']} rows sha256 {s['sha256'][:12]}"
                     for s in card["sources"])
    ln = card.get("lengths") or {}
    rows = [
        ("rows", f"{card['rows']} kept, {card['bad_count']} bad"),
        ("format", card["format"]),
        ("schema", ", ".join(f"{k}: {v}" for k, v in card["schema"].items())),
        ("splits", ", ".join(f"{k} {v}" for k, v in card["splits"].items())),
        ("sources", srcs),
        ("duplicates", f"{dup['count']}" + (" (row, repeats row): " + ", ".join(
            f"{a}={b}" for a, b in dup["rows"][:10]) if dup["rows"] else "")),
        ("label balance", lab),
        ("text length", f"min {ln.get('min')} · median {ln.get('median')} · max {ln.get('max')} chars"),
        ("PII", _pii_line(card["pii"])),
        ("made by", f"{card.get('made_by')} run {card.get('run')} at {card.get('created_at')}"),
    ]
    if card.get("description"):
        rows.insert(0, ("description", card["description"]))
    synth = card.get("synthetic")
    if synth:
        rows.append(("generator", f"{synth.get('model')} (weights {str(synth.get('model_hash'))[:12]}) · "
                     f"prompt {synth.get('prompt')} · seed set {synth.get('seed_dataset')}"))
        rows.append(("filters", ", ".join(f"{k} rejected {v}" for k, v in synth.get("rejected", {}).items())))
    return rows


def card_bundle(ref: str, card: dict[str, Any]) -> dict[str, str]:
    rows = summary_rows(card)
    title = f"dataset {ref}"
    meta = f"hash {card['hash'][:12]}"
    bad = card.get("bad_rows", [])
    bad_cols = ("where", "reason")
    bad_rows = [(b["where"], b["reason"]) for b in bad]
    text = f"{title}  {meta}\n" + "\n".join(f"{k:>13}: {v}" for k, v in rows)
    body = html.table(("field", "value"), rows)
    if bad_rows:
        more = card["bad_count"] - len(bad_rows)
        text += "\nbad rows:\n" + html.text_table(bad_cols, bad_rows) + (f"\n(+{more} more)" if more > 0 else "")
        body += f"<p><b>bad rows</b> ({escape(str(card['bad_count']))})</p>" + html.table(bad_cols, bad_rows)
    return {"text/plain": text, "text/html": html.box(title, body, meta)}
