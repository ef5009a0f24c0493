"""The compiled (Numba) KMeans kernels against the array-API ones and a direct reference.

The array-API kernels (tested on NumPy and array_api_strict in test_kmeans_kernels.py) are the
reference; the compiled ones must give the same labels, sums, weights, counts and inertias up
to the rounding of a differently blocked GEMM, for every shape the driver can hand them:
partitions smaller and larger than a chunk, empty ones, float32, sample weights, several runs
in one pass, and exact ties between centers.
"""
import array_api_compat.numpy as npx
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skdml
from skdml.cluster import KMeans
from skdml.cluster import _kmeans_fused as F
from skdml.cluster import _kmeans_kernels as K

pytest.importorskip("numba")

DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]
# n: below one chunk, several chunks with a remainder (k=4 float64: 4096-row chunks), empty
SIZES = [pytest.param(300, id="small"), pytest.param(9001, id="chunks"),
         pytest.param(0, id="empty")]


def _rtol(dtype):
    return 2e-4 if dtype == np.float32 else 1e-10


def _data(n, d=5, k=4, dtype=np.float64, seed=0, n_runs=1):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * 2 + 5).astype(dtype)
    centers = rng.standard_normal((n_runs * k, d)) * 2 + 5
    w = rng.random(n).astype(dtype)
    return X, centers, w


def _terms(centers, dtype):
    shift = centers.mean(axis=0)
    C2, e = K.center_terms(centers, shift, xp=npx)
    return C2.astype(dtype), e.astype(dtype), shift.astype(dtype)


def _ref_labels(X, centers):
    d2 = ((np.asarray(X, np.float64)[:, None, :] - centers[None]) ** 2).sum(-1)
    return d2.argmin(axis=1), d2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n_runs", [1, 3])
def test_lloyd_partial_matches_array_api(dtype, n, weighted, n_runs):
    X, centers, w = _data(n, dtype=dtype, n_runs=n_runs)
    w = w if weighted else None
    C2, e, shift = _terms(centers, dtype)
    fast = F.lloyd_partial(X, w, C2, e, n_runs=n_runs, with_inertia=True, shift=shift)
    ref = K.lloyd_partial(X, w, C2, e, n_runs=n_runs, with_inertia=True, shift=shift, xp=npx)
    assert set(fast) == set(ref)
    for key in ref:
        assert np.asarray(fast[key]).dtype == np.float64, key
        assert_allclose(fast[key], ref[key], rtol=_rtol(dtype), atol=1e-6, err_msg=key)
    if n and not weighted and n_runs == 1:  # against the direct definition too
        labels, _ = _ref_labels(X, centers)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, X.astype(np.float64))
        assert_allclose(fast["sums"], sums, rtol=_rtol(dtype), atol=1e-4)
        assert_array_equal(fast["weights"], np.bincount(labels, minlength=len(centers)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("n_runs", [1, 2])
def test_assign_partial_matches_array_api(dtype, n, n_runs):
    X, centers, w = _data(n, dtype=dtype, n_runs=n_runs, seed=1)
    C2, e, _ = _terms(centers, dtype)
    fast = F.assign_partial(X, w, C2, e, centers.astype(dtype), n_runs=n_runs,
                            return_labels=True)
    ref = K.assign_partial(X, w, C2, e, centers.astype(dtype), n_runs=n_runs,
                           return_labels=True, xp=npx)
    assert_array_equal(fast["labels"], ref["labels"])
    assert fast["labels"].dtype == np.int32
    assert_array_equal(fast["counts"], ref["counts"])
    assert_allclose(fast["inertia"], ref["inertia"], rtol=_rtol(dtype))
    if n and n_runs == 1:
        labels, d2 = _ref_labels(X, centers.astype(dtype).astype(np.float64))
        assert_array_equal(F.labels_block(X, C2, e), labels)
        exact = (w.astype(np.float64) * d2[np.arange(n), labels]).sum()
        assert_allclose(fast["inertia"][0], exact, rtol=_rtol(dtype))


def test_ties_go_to_the_first_center():
    X, centers, _ = _data(500, k=3)
    centers = np.concatenate([centers, centers[:1]])  # center 3 duplicates center 0
    C2, e, _ = _terms(centers, np.float64)
    labels = F.labels_block(X, C2, e)
    assert not (labels == 3).any()
    assert_array_equal(labels, K.labels_block(X, C2, e, xp=npx))
    stats = F.lloyd_partial(X, None, C2, e)
    assert stats["weights"][3] == 0


def test_inputs_are_not_changed():
    X, centers, w = _data(2000)
    C2, e, shift = _terms(centers, np.float64)
    before = [a.copy() for a in (X, w, C2, e, shift)]
    F.lloyd_partial(X, w, C2, e, with_inertia=True, shift=shift)
    F.assign_partial(X, w, C2, e, centers, return_labels=True)
    for a, b in zip((X, w, C2, e, shift), before):
        assert_array_equal(a, b)


def test_usable_only_for_row_major_float_numpy():
    X = np.ones((10, 3))
    assert F.usable(X)
    assert F.usable(X.astype(np.float32))
    assert not F.usable(np.asfortranarray(X))
    assert not F.usable(X[:, :2])  # a strided view
    assert not F.usable(X.astype(np.float16))
    assert not F.usable(X.astype(np.int64))
    with skdml.config.set(jit=False):
        assert not F.usable(X)


def test_kmeans_fit_is_the_same_with_and_without_jit(c):
    from skdml.datasets import make_blobs

    X, _ = make_blobs(n_samples=3000, n_features=6, centers=5, chunks=700, random_state=0)
    init = X[:5].compute()
    fits = []
    for jit in (True, False):
        with skdml.config.set(jit=jit):
            fits.append(KMeans(5, init=init, n_init=1, tol=0, max_iter=20).fit(X))
    a, b = fits
    assert a.n_iter_ == b.n_iter_
    assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-10)
    assert_allclose(a.inertia_, b.inertia_, rtol=1e-10)
    assert_array_equal(a.labels_.compute(), b.labels_.compute())
