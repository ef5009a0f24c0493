"""Tests of skdml.cluster._kmeans_kernels on NumPy and array_api_strict.

Every kernel is compared with a direct NumPy reference (full distance matrices, fine on test
sizes); running them on array_api_strict proves they use nothing beyond the array API.
"""
import array_api_compat.numpy as npx
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skdml._backend import to_host
from skdml.cluster import _kmeans_kernels as K

xps = pytest.importorskip("array_api_strict")

NAMESPACES = [pytest.param(npx, id="numpy"), pytest.param(xps, id="strict")]
DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]


def _as(xp, a, dtype=None):
    if a is None:
        return None
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return xp.asarray(a, copy=True)


def _np(x):
    return to_host(x)


def _rtol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


def _data(n=300, d=5, k=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 2 + 5
    centers = X[rng.choice(n, k, replace=False)] + 0.1
    w = rng.random(n)
    return X.astype(dtype), centers, w.astype(dtype)


def _terms(centers, shift, dtype, xp):
    C2, e = K.center_terms(np.asarray(centers, np.float64), np.asarray(shift, np.float64),
                           xp=npx)
    return _as(xp, C2, dtype), _as(xp, e, dtype)


def _ref_labels(X, centers):
    d2 = ((np.asarray(X, np.float64)[:, None, :] - centers[None]) ** 2).sum(-1)
    return d2.argmin(axis=1), d2


# -- block sizes -------------------------------------------------------------------------------
def test_block_rows_bounds_temporaries():
    assert K.block_rows(16, 8) * 16 * 8 <= K.TEMP_BYTES
    assert K.block_rows(16, 4) == 2 * K.block_rows(16, 8)
    assert K.block_rows(100_000, 8) == K.MIN_ROWS
    assert K.block_rows(1, 4) == K.MAX_ROWS


def test_center_terms_give_shifted_squared_distances():
    X, centers, _ = _data()
    shift = centers.mean(axis=0)
    C2, e = K.center_terms(centers, shift, xp=npx)
    xs = ((X - shift) ** 2).sum(axis=1)
    score = X @ C2.T + e
    assert_allclose(xs[:, None] + score, _ref_labels(X, centers)[1], rtol=1e-10)


# -- Lloyd -------------------------------------------------------------------------------------
@pytest.mark.parametrize("xp", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lloyd_partial_matches_reference(xp, dtype, weighted):
    X, centers, w = _data(n=2000, dtype=dtype)  # several row-blocks at 4 centers
    shift = centers.mean(axis=0)
    C2, e = _terms(centers, shift, dtype, xp)
    Xx = _as(xp, X)
    out = K.lloyd_partial(Xx, _as(xp, w) if weighted else None, C2, e, with_inertia=True,
                          shift=_as(xp, shift, dtype), xp=xp)
    out = {key: _np(v) for key, v in out.items()}
    labels, d2 = _ref_labels(X, centers)
    ww = w.astype(np.float64) if weighted else np.ones(len(X))
    hot = np.eye(len(centers))[labels] * ww[:, None]
    assert out["sums"].dtype == np.float64
    assert_allclose(out["sums"], hot.T @ X.astype(np.float64), rtol=_rtol(dtype), atol=1e-3)
    assert_allclose(out["weights"], hot.sum(axis=0), rtol=_rtol(dtype))
    xs = ((X.astype(np.float64) - shift) ** 2).sum(axis=1)
    assert_allclose(out["wxx"] + out["inertia"][0], (ww * d2.min(axis=1)).sum(),
                    rtol=_rtol(dtype) * 10)
    assert_allclose(out["wxx"], (ww * xs).sum(), rtol=_rtol(dtype))
    assert float(out["n"]) == len(X)
    assert_allclose(out["s1"], (X - shift.astype(dtype)).sum(axis=0), rtol=_rtol(dtype),
                    atol=1e-2)
    assert_allclose(out["s2"], ((X - shift.astype(dtype)) ** 2).sum(axis=0), rtol=_rtol(dtype))


@pytest.mark.parametrize("xp", NAMESPACES)
def test_lloyd_partial_several_runs_equal_separate_runs(xp):
    X, c1, w = _data(n=700, k=3, seed=1)
    c2 = _data(n=700, k=3, seed=2)[1]
    shift = np.vstack([c1, c2]).mean(axis=0)
    both = K.lloyd_partial(_as(xp, X), _as(xp, w), *_terms(np.vstack([c1, c2]), shift,
                                                           np.float64, xp), n_runs=2, xp=xp)
    for r, c in enumerate([c1, c2]):
        one = K.lloyd_partial(_as(xp, X), _as(xp, w), *_terms(c, shift, np.float64, xp), xp=xp)
        assert_allclose(_np(both["sums"])[3 * r:3 * r + 3], _np(one["sums"]), rtol=1e-12)
        assert_allclose(_np(both["weights"])[3 * r:3 * r + 3], _np(one["weights"]))


@pytest.mark.parametrize("xp", NAMESPACES)
def test_lloyd_partial_ties_go_to_the_first_center(xp):
    X, centers, _ = _data(n=500, k=3)
    dup = np.vstack([centers[0], centers[0], centers[1:]])  # centers 0 and 1 tie exactly
    out = K.lloyd_partial(_as(xp, X), None, *_terms(dup, dup.mean(axis=0), np.float64, xp),
                          xp=xp)
    labels = _ref_labels(X, centers)[0]
    weights = _np(out["weights"])
    assert weights[1] == 0
    assert_array_equal(weights[[0, 2, 3]], np.bincount(labels, minlength=3))
    assert weights.sum() == len(X)


@pytest.mark.parametrize("xp", NAMESPACES)
def test_lloyd_partial_does_not_change_inputs(xp):
    X, centers, w = _data()
    Xx, wx = _as(xp, X), _as(xp, w)
    C2, e = _terms(centers, centers.mean(axis=0), np.float64, xp)
    K.lloyd_partial(Xx, wx, C2, e, with_inertia=True, shift=_as(xp, centers[0]), xp=xp)
    assert_array_equal(_np(Xx), X)
    assert_array_equal(_np(wx), w)


def test_lloyd_partial_column_major_equals_row_major():
    X, centers, w = _data(n=1500)
    C2, e = _terms(centers, centers.mean(axis=0), np.float64, npx)
    a = K.lloyd_partial(X, w, C2, e, xp=npx)
    b = K.lloyd_partial(np.asfortranarray(X), w, C2, e, xp=npx)
    assert_allclose(a["sums"], b["sums"], rtol=1e-13)
    assert_array_equal(a["weights"], b["weights"])


# -- final E-step, predict, transform ----------------------------------------------------------
@pytest.mark.parametrize("xp", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_assign_partial_and_labels_block(xp, dtype):
    X, centers, w = _data(n=1200, dtype=dtype)
    c = centers.astype(dtype)
    C2, e = _terms(c, c.astype(np.float64).mean(axis=0), dtype, xp)
    out = K.assign_partial(_as(xp, X), _as(xp, w), C2, e, _as(xp, c), return_labels=True,
                           xp=xp)
    labels, d2 = _ref_labels(X, c.astype(np.float64))
    assert_array_equal(_np(out["labels"])[0], labels)
    assert _np(out["labels"]).dtype == np.int32
    assert_array_equal(_np(out["counts"]), np.bincount(labels, minlength=len(c)))
    assert_allclose(_np(out["inertia"])[0], (w * d2.min(axis=1)).sum(), rtol=_rtol(dtype))
    got = _np(K.labels_block(_as(xp, X), C2, e, xp=xp))
    assert got.dtype == np.int32
    assert_array_equal(got, labels)
    inertia = _np(K.inertia_block(_as(xp, X), None, C2, e, _as(xp, c), xp=xp))
    assert_allclose(inertia, [d2.min(axis=1).sum()], rtol=_rtol(dtype))


@pytest.mark.parametrize("xp", NAMESPACES)
def test_assign_partial_several_runs(xp):
    X, c1, _ = _data(n=400, k=3, seed=3)
    c2 = _data(n=400, k=3, seed=4)[1]
    cc = np.vstack([c1, c2])
    C2 = np.vstack([_np(t) for t in [_terms(c1, c1.mean(0), np.float64, npx)[0],
                                     _terms(c2, c2.mean(0), np.float64, npx)[0]]])
    e = np.concatenate([_terms(c1, c1.mean(0), np.float64, npx)[1],
                        _terms(c2, c2.mean(0), np.float64, npx)[1]])
    out = K.assign_partial(_as(xp, X), None, _as(xp, C2), _as(xp, e), _as(xp, cc), n_runs=2,
                           return_labels=True, xp=xp)
    for r, c in enumerate([c1, c2]):
        labels, d2 = _ref_labels(X, c)
        assert_array_equal(_np(out["labels"])[r], labels)
        assert_allclose(_np(out["inertia"])[r], d2.min(axis=1).sum(), rtol=1e-10)


@pytest.mark.parametrize("xp", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_distances_block(xp, dtype):
    X, centers, _ = _data(n=700, dtype=dtype)
    shift = centers.mean(axis=0)
    C2, e = _terms(centers, shift, dtype, xp)
    got = _np(K.distances_block(_as(xp, X), C2, e, _as(xp, shift, dtype), xp=xp))
    assert got.dtype == dtype
    assert_allclose(got, np.sqrt(_ref_labels(X, centers)[1]), rtol=_rtol(dtype) * 10)


@pytest.mark.parametrize("xp", NAMESPACES)
def test_empty_blocks(xp):
    X = _as(xp, np.zeros((0, 3)))
    C2, e = _terms(np.ones((2, 3)), np.zeros(3), np.float64, xp)
    assert _np(K.labels_block(X, C2, e, xp=xp)).shape == (0,)
    assert _np(K.distances_block(X, C2, e, _as(xp, np.zeros(3)), xp=xp)).shape == (0, 2)
    assert _np(K.inertia_block(X, None, C2, e, _as(xp, np.ones((2, 3))), xp=xp)) == [0.0]


# -- empty-cluster re-seeding ------------------------------------------------------------------
@pytest.mark.parametrize("xp", NAMESPACES)
def test_farthest_partial_and_merge(xp):
    X, centers, w = _data(n=600)
    C2, e = _terms(centers, centers.mean(axis=0), np.float64, xp)
    labels, d2 = _ref_labels(X, centers)
    dist = d2[np.arange(len(X)), labels]
    for n_far in (1, 3, 40):
        parts = [K.farthest_partial(_as(xp, X[a:b]), _as(xp, w[a:b]), C2, e, _as(xp, centers),
                                    n_far, a, xp=xp) for a, b in [(0, 250), (250, 600)]]
        merged = {key: _np(v) for key, v in
                  K.merge_top(parts[0], parts[1], n_keep=n_far, key="dist").items()}
        expected = np.argsort(-dist, kind="stable")[:n_far]
        assert_array_equal(merged["index"], expected)
        assert_allclose(merged["dist"], dist[expected], rtol=1e-10)
        assert_array_equal(merged["rows"], X[expected])
        assert_array_equal(merged["label"], labels[expected])
        assert_allclose(merged["weight"], w[expected])


# -- sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("xp", NAMESPACES)
@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_sample_partial_takes_top_keys(xp, weighted):
    X, _, w = _data(n=500)
    w[::7] = 0
    u = np.random.default_rng(0).random(500) + 1e-12
    parts = [K.sample_partial(_as(xp, X[a:b]), _as(xp, w[a:b]), _as(xp, u[a:b]), 20, a,
                              weighted=weighted, xp=xp) for a, b in [(0, 123), (123, 500)]]
    merged = {key: _np(v) for key, v in K.merge_top(parts[0], parts[1], n_keep=20).items()}
    key = np.log(u) / np.where(w > 0, w, 1) if weighted else np.log(u)
    if weighted:
        key[w == 0] = -np.inf
    expected = np.argsort(-key, kind="stable")[:20]
    assert_array_equal(merged["index"], expected)
    assert_array_equal(merged["rows"], X[expected])
    assert not (weighted and (w[merged["index"]] == 0).any())


def test_merge_top_is_commutative_and_associative():
    X, _, w = _data(n=90)
    u = np.random.default_rng(1).random(90)
    parts = [K.sample_partial(X[a:a + 30], w[a:a + 30], u[a:a + 30], 5, a, weighted=True,
                              xp=npx) for a in (0, 30, 60)]
    m = lambda a, b: K.merge_top(a, b, n_keep=5)  # noqa: E731
    one = m(m(parts[0], parts[1]), parts[2])
    two = m(parts[2], m(parts[1], parts[0]))
    for key in one:
        assert_array_equal(one[key], two[key])


# -- k-means|| ---------------------------------------------------------------------------------
@pytest.mark.parametrize("xp", NAMESPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kmeans_parallel_state_select_and_weigh(xp, dtype):
    X, _, w = _data(n=800, dtype=dtype)
    Xf = X.astype(np.float64)
    first = Xf[5]
    state = K.par_first(_as(xp, X), _as(xp, first, dtype), xp=xp)
    assert_allclose(_np(state)[:, 0], ((Xf - first) ** 2).sum(1), rtol=_rtol(dtype) * 10)
    cands = [first]
    ids = np.zeros(len(X), dtype=np.int64)
    # two batches of new candidates
    for batch in (Xf[[10, 20, 30]], Xf[[40, 50]]):
        C2, e = K.center_terms(batch, first, xp=npx)
        first_id = len(cands)
        state = K.par_update(_as(xp, X), state, _as(xp, C2.T, dtype), _as(xp, e, dtype),
                             first_id, xp=xp)
        cands.extend(batch)
    C = np.asarray(cands)
    ref_ids, d2 = _ref_labels(Xf, C)
    got = _np(state)
    assert_allclose(got[:, 0], d2.min(axis=1), rtol=_rtol(dtype) * 10,
                    atol=1e-3 if dtype == np.float32 else 1e-9)
    assert_array_equal(got[:, 1].astype(int), ref_ids)
    # select: rows with l w d2 > u phi_p
    u = np.random.default_rng(2).random(len(X))
    sel = {key: _np(v) for key, v in
           K.par_select(_as(xp, X), _as(xp, w), state, _as(xp, u), 4.0, 100, xp=xp).items()}
    wd2 = w.astype(np.float64) * got[:, 0].astype(np.float64)
    assert_allclose(sel["phi"], wd2.sum(), rtol=1e-10)
    expected = np.flatnonzero(4.0 * wd2 > u * wd2.sum())
    assert_array_equal(sel["index"], expected + 100)
    assert_array_equal(sel["rows"], X[expected])
    # weigh, with two more candidates not yet in the state
    last = Xf[[60, 70]]
    C2, e = K.center_terms(last, first, xp=npx)
    weights = _np(K.par_weigh(_as(xp, X), _as(xp, w), state, _as(xp, C2.T, dtype),
                              _as(xp, e, dtype), len(C), len(C) + 2, xp=xp))
    owner = _ref_labels(Xf, np.vstack([C, last]))[0]
    assert_allclose(weights, np.bincount(owner, weights=w, minlength=len(C) + 2),
                    rtol=_rtol(dtype))


def test_merge_selected_keeps_index_order():
    X, _, w = _data(n=100)
    state = K.par_first(X, X[0], xp=npx)
    u = np.random.default_rng(0).random(100)
    a = K.par_select(X[:50], w[:50], state[:50], u[:50], 10.0, 0, xp=npx)
    b = K.par_select(X[50:], w[50:], state[50:], u[50:], 10.0, 50, xp=npx)
    ab, ba = K.merge_selected(a, b), K.merge_selected(b, a)
    assert_array_equal(ab["index"], np.sort(ab["index"]))
    for key in ab:
        assert_array_equal(ab[key], ba[key])
    assert_allclose(ab["phi"], a["phi"] + b["phi"])


def test_add_stats():
    a = {"s": np.ones(2), "labels": {0: np.zeros(3)}}
    b = {"s": np.full(2, 2.0), "labels": {1: np.ones(2)}}
    out = K.add_stats(a, b)
    assert_array_equal(out["s"], [3, 3])
    assert sorted(out["labels"]) == [0, 1]
