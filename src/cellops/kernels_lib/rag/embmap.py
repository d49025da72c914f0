"""``embedding_map``: a 2-D PCA projection of an index's chunks, coloured by source, with a
query and its hits overlaid. Rendered to PNG (matplotlib, Agg) so it survives papermill,
nbconvert and GitHub: no JavaScript, no widget state.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import html
from ..workspace import Workspace, get_workspace
from .retrieve import search_many
from .store import open_index

MAX_POINTS = 5_000  # a sample keeps the plot readable and the SVD cheap
MAX_SOURCES = 10


@dataclass
class EmbeddingMap:
    png: bytes
    index: str
    points: int
    query: str | None = None
    hits: int = 0

    def _title(self) -> str:
        q = f", query {self.query!r} with {self.hits} hits" if self.query else ""
        return f"embedding map of {self.index}: {self.points} chunks (PCA){q}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        b64 = base64.b64encode(self.png).decode()
        return {"image/png": b64, "text/plain": self._title(),
                "text/html": f"<div><b>{html.esc(self._title())}</b><br>"
                             f"<img src='data:image/png;base64,{b64}'/></div>"}


def _pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:2]


def embedding_map(name: str, query: str | None = None, k: int = 10,
                  workspace: Workspace | None = None) -> EmbeddingMap:
    # Figure without pyplot: no global backend switch in the user's kernel
    import matplotlib
    from matplotlib.figure import Figure

    ws = workspace or get_workspace()
    index = open_index(name, ws)
    n = len(index.chunks)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, MAX_POINTS, replace=False)) if n > MAX_POINTS else np.arange(n)
    hit_ids: list[int] = []
    qvec = None
    if query:
        from ..models import get_embedder

        qvec = get_embedder(index.embedder_uri).encode([query])
        hit_ids = [h.chunk.id for h in search_many(index, [query], k, "dense", vectors=qvec)[0]]
        sample = np.union1d(sample, hit_ids)
    vecs = np.asarray(index.dense.vectors[sample], dtype=np.float32)
    mean, axes = _pca(vecs) if len(vecs) > 2 else (np.zeros(vecs.shape[1]), np.eye(2, vecs.shape[1]))
    xy = (vecs - mean) @ axes.T
    sources = [index.chunks[i].source for i in sample]
    top = [s for s, _ in Counter(sources).most_common(MAX_SOURCES)]
    fig = Figure(figsize=(7, 5), dpi=90)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab10"]
    for j, s in enumerate(top + ["other"]):
        mask = np.array([(src == s) if s != "other" else (src not in top) for src in sources])
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=8, alpha=0.6, color=cmap(j % 10) if s != "other" else "#bbb",
                       label=s if len(s) < 40 else "…" + s[-38:])
    if qvec is not None:
        pos = {int(c): i for i, c in enumerate(sample)}
        hx = xy[[pos[h] for h in hit_ids]]
        ax.scatter(hx[:, 0], hx[:, 1], s=80, facecolors="none", edgecolors="black", linewidths=1.2,
                   label=f"top {len(hit_ids)} hits")
        q = (qvec - mean) @ axes.T
        ax.scatter(q[:, 0], q[:, 1], marker="*", s=260, color="red", edgecolors="black", label="query")
    ax.set_title(f"{index.ref}: {n} chunks" + (" (sample)" if n > MAX_POINTS else ""))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best", markerscale=1.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return EmbeddingMap(buf.getvalue(), index.ref, len(sample), query, len(hit_ids))
