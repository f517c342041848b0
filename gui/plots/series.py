"""A growing x/y buffer for one live curve, with a min/max pyramid so a redraw costs the same at any length."""

from __future__ import annotations

import numpy as np


class Series:
    """An x/y buffer that doubles its capacity when full; `x`/`y` are views of the filled part.

    It also keeps a min/max pyramid (level k: index of the minimum and maximum of each bucket of 2**k points),
    caught up lazily by `decimated` so that a redraw hands pyqtgraph a few points per pixel, not all of them.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        self._levels: list[tuple[np.ndarray, np.ndarray]] = []  # level k+1: (argmin, argmax) per 2**(k+1) points
        self._synced = 0  # points already folded into the pyramid
        self._depth = 0  # levels valid for the first `_synced` points

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        need = self.n + len(xs)
        if need > len(self._x):
            cap = max(need, 2 * len(self._x))
            self._x = _grown(self._x, self.n, cap)
            self._y = _grown(self._y, self.n, cap)
        self._x[self.n : need] = xs
        self._y[self.n : need] = ys
        self.n = need

    def clear(self) -> None:
        self.n = 0
        self._synced = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def decimated(self, start: int, stop: int, buckets: int) -> np.ndarray:
        """Indices of the points to draw for [start, stop): all of them when there are at most 2 * `buckets`,
        else the minimum and maximum of each of at least `buckets` equal buckets, in order, plus the first and
        last point (peaks keep their height, the line ends at the newest value)."""
        start, stop = max(0, start), min(self.n, stop)
        if stop - start <= 2 * buckets:
            return np.arange(start, stop)
        self._sync()
        level = min(int(np.log2((stop - start) / buckets)), self._depth)
        size = 1 << level
        imin, imax = self._levels[level - 1]
        first, last = start // size, (stop - 1) // size + 1
        lo, hi = imin[first:last], imax[first:last]
        idx = np.empty(2 * len(lo) + 2, dtype=np.int64)
        idx[1:-1:2] = np.minimum(lo, hi)
        idx[2:-1:2] = np.maximum(lo, hi)
        idx[0], idx[-1] = start, stop - 1
        idx = np.clip(idx, start, stop - 1)  # edge buckets may reach past the range
        return idx[np.r_[True, idx[1:] != idx[:-1]]]

    def _sync(self) -> None:
        """Fold points [synced, n) into every level, redoing only each level's last (partial) bucket onward:
        with numpy for many new points, with plain Python for a few (a live redraw's usual case, where numpy's
        per-call cost over ~20 levels was most of the work)."""
        n, y = self.n, self._y
        if self._synced == n:
            return
        few = n - self._synced <= FEW_POINTS
        size, count, k = 2, n, 0
        child_min = child_max = None  # level 0: the points themselves
        while count > 1:
            buckets = -(-n // size)
            first = (self._synced // size)  # the first bucket that saw new points
            if k == len(self._levels):
                self._levels.append((np.empty(0, np.int64), np.empty(0, np.int64)))
            imin, imax = self._levels[k]
            if len(imin) < buckets:
                cap = max(buckets, 2 * len(imin))
                imin, imax = _grown(imin, first, cap), _grown(imax, first, cap)
                self._levels[k] = (imin, imax)
            if few:
                _fold_few(y, child_min, child_max, imin, imax, first, buckets, count)
            else:
                _fold(y, child_min, child_max, imin, imax, first, buckets, count)
            child_min, child_max, count = imin, imax, buckets
            size, k = 2 * size, k + 1
        self._synced, self._depth = n, k


FEW_POINTS = 64  # new points up to which `_sync` folds them without numpy


def _fold(y: np.ndarray, child_min, child_max, imin: np.ndarray, imax: np.ndarray, first: int, buckets: int,
          count: int) -> None:
    """Buckets [first, buckets) of a level from the `count` entries of the level below (the points when
    `child_min` is None): each bucket takes the lower minimum and the higher maximum of its two children."""
    lo, hi = 2 * first, count
    if child_min is None:
        a_min = a_max = np.arange(lo, hi)
    else:
        a_min, a_max = child_min[lo:hi], child_max[lo:hi]
    if len(a_min) % 2:  # a bucket with one child so far
        a_min, a_max = np.append(a_min, a_min[-1]), np.append(a_max, a_max[-1])
    a_min, a_max = a_min.reshape(-1, 2), a_max.reshape(-1, 2)
    y0, y1 = y[a_min[:, 0]], y[a_min[:, 1]]
    imin[first:buckets] = np.where((y0 <= y1) | np.isnan(y1), a_min[:, 0], a_min[:, 1])
    y0, y1 = y[a_max[:, 0]], y[a_max[:, 1]]
    imax[first:buckets] = np.where((y0 >= y1) | np.isnan(y1), a_max[:, 0], a_max[:, 1])


def _fold_few(y: np.ndarray, child_min, child_max, imin: np.ndarray, imax: np.ndarray, first: int,
              buckets: int, count: int) -> None:
    """`_fold` one bucket at a time, for the few buckets a few new points touch (same choices, NaN included)."""
    for b in range(first, buckets):
        c0, c1 = 2 * b, min(2 * b + 1, count - 1)
        if child_min is None:
            n0 = x0 = int(c0)
            n1 = x1 = int(c1)
        else:
            n0, n1, x0, x1 = int(child_min[c0]), int(child_min[c1]), int(child_max[c0]), int(child_max[c1])
        v0, v1 = y[n0], y[n1]
        imin[b] = n0 if v0 <= v1 or v1 != v1 else n1
        v0, v1 = y[x0], y[x1]
        imax[b] = x0 if v0 >= v1 or v1 != v1 else x1


def _grown(a: np.ndarray, filled: int, capacity: int) -> np.ndarray:
    """A larger copy of `a` holding its first `filled` entries (np.resize would also copy the unused tail)."""
    b = np.empty(capacity, dtype=a.dtype)
    b[:filled] = a[:filled]
    return b
