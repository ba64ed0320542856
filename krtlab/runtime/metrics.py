"""``v.metrics()``: what a version's nodes recorded in local runs, for people and notebooks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from krtlab.runtime.store import LocalStore, shared_store, store_path

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

__all__ = ["Metrics", "metrics_for"]


class Metrics:
    """A snapshot of what a version's nodes recorded in local runs.

    Attributes:
        version: the version name.
        path: the store file.
        measurements: ``ctx.measurement.save`` points, oldest first.
        predictions: ``ctx.prediction.save`` records, oldest first.
    """

    def __init__(self, version: str, store: LocalStore) -> None:
        self.version = version
        self.path = store.path
        self.measurements = store.measurements()
        self.predictions = store.predictions()
        self._documents = {c: store.find(c) for c in store.collections()}

    def documents(self, coll: str | None = None) -> Any:
        """``ctx.db.save`` documents: of one collection (a list), or all of them (a dict)."""
        if coll is not None:
            return list(self._documents.get(coll, []))
        return {c: list(d) for c, d in self._documents.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data."""
        return {
            "version": self.version,
            "store": str(self.path),
            "measurements": self.measurements,
            "predictions": self.predictions,
            "documents": self.documents(),
        }

    def _sections(self) -> list[tuple[str, list[str], list[list[str]]]]:
        m = [
            [r["time"], r["measurement"], _short(r["fields"]), _short(r["tags"]), r["node"]]
            for r in self.measurements
        ]
        p = [
            [r["date"], r["predicted_value"], r["true_value"], r["error"], r["node"]]
            for r in self.predictions
        ]
        d = [[c, _short(doc)] for c, docs in self._documents.items() for doc in docs]
        return [
            ("measurements", ["time", "measurement", "fields", "tags", "node"], m),
            ("predictions", ["date", "predicted", "true", "error", "node"], p),
            ("documents", ["collection", "document"], d),
        ]

    def format(self, limit: int | None = 20) -> str:
        """Readable text: a summary line, then the last ``limit`` rows of each kind."""
        docs = sum(len(d) for d in self._documents.values())
        lines = [
            f"{self.version}: {len(self.measurements)} measurements, {len(self.predictions)} "
            f"predictions, {docs} documents ({self.path})"
        ]
        for title, cols, rows in self._sections():
            if rows:
                lines.append(f"{title}: {'  '.join(cols)}")
                shown = rows if limit is None else rows[-limit:]
                if len(shown) < len(rows):
                    lines.append(f"  ... {len(rows) - len(shown)} earlier")
                lines += ["  " + "  ".join(r) for r in shown]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Metrics {self.format()}>"

    def _repr_html_(self) -> str:
        from html import escape

        parts = [f"<p><b>{escape(self.version)}</b> local metrics <code>{escape(str(self.path))}"]
        parts[0] += "</code></p>"
        for title, cols, rows in self._sections():
            parts.append(f"<p>{escape(title)}: {len(rows)}</p>")
            if rows:
                head = "".join(f"<th>{escape(c)}</th>" for c in cols)
                body = "".join(
                    "<tr>" + "".join(f"<td>{escape(x)}</td>" for x in r) + "</tr>"
                    for r in rows[-_SHOWN:]
                )
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return "".join(parts)


_SHOWN = 20


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def metrics_for(version: Version | str) -> Metrics:
    """What a version's nodes recorded in local runs (its store under the working directory)."""
    name = version if isinstance(version, str) else version.name
    return Metrics(name, shared_store(store_path(name)))
