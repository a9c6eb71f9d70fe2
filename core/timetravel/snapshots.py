"""Snapshots of folded read models, so repeated seeks on a version never run fold
from the first event again.

A read model that has no history at a point is folded from the log. Each fold leaves a
snapshot of where it ended; the next fold of that version starts from the nearest
snapshot at or before its point and applies only the events after it. The log is
append-only, so a snapshot of a prefix stays true. Snapshots are kept as compact JSON
within a byte budget, the least recently used going first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Final

import orjson

__all__ = ["DEFAULT_BUDGET", "FoldSnapshots"]

#: Bytes of encoded documents kept across all snapshots.
DEFAULT_BUDGET: Final = 64 * 1024 * 1024


class FoldSnapshots:
    """Folded read models by (model, position), within a byte budget.

    Args:
        budget: bytes of encoded documents kept in all; a larger model is not kept.
    """

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._kept: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # panels seek from several worker threads

    def nearest(self, model: str, position: int) -> tuple[int, dict[str, Any]]:
        """The latest snapshot of ``model`` at or before ``position``, decoded (a fresh
        copy), or (0, {}) when there is none."""
        with self._lock:
            best = max((p for m, p in self._kept if m == model and p <= position), default=None)
            if best is None:
                return 0, {}
            self._kept.move_to_end((model, best))
            encoded = self._kept[(model, best)]
        documents: dict[str, Any] = orjson.loads(encoded)
        return best, documents

    def keep(self, model: str, position: int, documents: dict[str, Any]) -> None:
        """Keep a fold's result (nothing happens if it alone exceeds the budget)."""
        encoded = orjson.dumps(documents)
        with self._lock:
            if len(encoded) > self.budget or (model, position) in self._kept:
                return
            self._kept[(model, position)] = encoded
            self._size += len(encoded)
            while self._size > self.budget:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._kept)
