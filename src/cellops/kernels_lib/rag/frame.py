"""``SearchResult.df``: the hits as a pandas DataFrame that shows itself as the hit table.

pandas' own text form fits a frame to the terminal width by eliding middle columns and wrapping,
so ``%rag search``'s output in a terminal, papermill's text/plain or a `print` showed rank, score
and "..." but not the source or the text. This frame keeps every pandas behaviour and only
replaces how it displays: text/plain (also ``repr`` and ``print``) and text/html are the hit table
of ``retrieve.hits_bundle`` (escaped HTML). A frame derived from it (a filter, a sort) shows the
same way while it keeps the table's columns, and pandas' own form once it does not.
Imported only when ``.df`` is used: pandas is a heavy import.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


class HitFrame(pd.DataFrame):
    _metadata = ["title"]  # pandas carries these attributes through copies and filters
    title: str = ""  # "for 'QUERY' in NAME@V (MODE)"

    @property
    def _constructor(self) -> type[HitFrame]:
        return HitFrame

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .retrieve import TABLE_COLUMNS, hits_bundle

        if not set(TABLE_COLUMNS) <= set(self.columns):  # edited in place: pandas' own form
            return {"text/plain": pd.DataFrame.__repr__(self), "text/html": pd.DataFrame.to_html(self)}
        rows = self[list(TABLE_COLUMNS)].itertuples(index=False, name=None)
        return hits_bundle(f"{len(self)} hits {self.title}", [(r, f"{s:.3f}", *rest) for r, s, *rest in rows])

    def __repr__(self) -> str:  # print(df), repr(df) and a terminal show the same hit table
        return self._repr_mimebundle_()["text/plain"]


def hit_frame(records: list[dict[str, Any]], columns: list[str], title: str) -> HitFrame:
    frame = HitFrame(records, columns=columns)
    frame.title = title
    return frame
