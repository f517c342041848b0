"""The curve buffer: it grows without losing points, and decimates to each bucket's min and max."""

import numpy as np

from gui.plots.series import Series


def test_series_grows_past_its_capacity_and_keeps_every_point():
    s = Series(capacity=4)
    for i in range(10):
        s.extend([i, i + 0.5], [2 * i, 2 * i + 1])
    assert s.n == 20
    assert np.array_equal(s.x[:4], [0, 0.5, 1, 1.5])
    assert s.y[-1] == 19


def test_decimation_keeps_each_buckets_min_and_max_and_the_last_point():
    rng = np.random.default_rng(3)
    y = rng.normal(size=50_000)
    y[12_345] = 40.0  # a single spike must survive decimation
    s = Series(capacity=8)
    for i in range(0, len(y), 777):  # arrives in batches; the pyramid catches up between them
        s.extend(np.arange(i, min(i + 777, len(y))), y[i : i + 777])
        s.decimated(0, s.n, 100)
    for start, stop in ((0, s.n), (1_000, 31_001)):
        idx = s.decimated(start, stop, 100)
        assert idx[0] == start and idx[-1] == stop - 1 and np.all(np.diff(idx) > 0)
        size = 1 << int(np.log2((stop - start) / 100))  # the level decimated chose: >= 100 buckets in range
        assert len(idx) <= 2 * ((stop - start) // size + 2) + 2  # a few points per bucket, not all of them
        kept = set(idx.tolist())
        for b in range(-(-start // size), stop // size):  # every whole bucket inside the range
            seg = slice(b * size, (b + 1) * size)
            in_bucket = [j for j in kept if b * size <= j < (b + 1) * size]
            assert y[seg].min() in y[in_bucket] and y[seg].max() in y[in_bucket]
    assert 12_345 in s.decimated(0, s.n, 100)
    assert np.array_equal(s.decimated(10, 50, 100), np.arange(10, 50))  # few points: all of them


def test_a_few_points_at_a_time_build_the_same_pyramid_as_all_at_once():
    """A live run adds a few points per redraw (folded in plain Python); the pyramid must be the one numpy builds
    from the whole buffer, NaN losses included."""
    rng = np.random.default_rng(5)
    y = rng.normal(size=3_000)
    y[rng.choice(3_000, 40, replace=False)] = np.nan
    whole, trickle = Series(), Series()
    whole.extend(np.arange(3_000), y)
    whole.decimated(0, whole.n, 10)
    i = 0
    for step in (1, 3, 64, 2, 65, 7) * 100:
        if i >= len(y):
            break
        trickle.extend(np.arange(i, min(i + step, len(y))), y[i : i + step])
        trickle.decimated(0, trickle.n, 10)
        i += step
    assert trickle.n == whole.n
    for k, ((a_min, a_max), (b_min, b_max)) in enumerate(zip(whole._levels, trickle._levels, strict=True)):
        buckets = -(-whole.n // (1 << (k + 1)))
        assert np.array_equal(a_min[:buckets], b_min[:buckets]) and np.array_equal(a_max[:buckets], b_max[:buckets])
