"""Lazy generators: shapes, determinism, laziness and statistical sanity against scikit-learn."""
import sys
import types

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression

from skdml.datasets import (
    Ratings,
    make_blobs,
    make_classification,
    make_ratings,
    make_regression,
)

GENERATORS = {
    "blobs": lambda **kw: make_blobs(n_samples=103, n_features=3, **kw),
    "classification": lambda **kw: make_classification(n_samples=103, n_features=6, **kw),
    "regression": lambda **kw: make_regression(n_samples=103, n_features=6, n_informative=3,
                                               noise=0.5, **kw),
}


def _counting_scheduler():
    calls = []

    def get(dsk, keys, **kwargs):
        calls.append(keys)
        return dask.get(dsk, keys, **kwargs)

    return get, calls


# ------------------------------------------------------------------------------------------
# shared behaviour
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shapes_chunks_dtypes_and_names(name):
    X, y = GENERATORS[name](chunks=25, random_state=0)
    assert X.shape == (103, X.shape[1]) and y.shape == (103,)
    assert X.chunks[0] == (25, 25, 25, 25, 3) and len(X.chunks[1]) == 1
    assert y.chunks[0] == X.chunks[0]
    assert X.dtype == np.float64 and type(X._meta) is np.ndarray and X._meta.ndim == 2
    assert X.name.startswith(f"skdml-make-{name}-X-")
    assert y.name.startswith(f"skdml-make-{name}-y-")
    Xc, yc = dask.compute(X, y)
    assert Xc.shape == X.shape and Xc.dtype == X.dtype and yc.dtype == y.dtype
    assert np.all(np.isfinite(Xc))
    # one generating task per chunk (plus one for the model), one getitem per chunk and output
    keys = dict(X.__dask_graph__())
    assert sum(isinstance(k, tuple) and k[0].startswith(f"skdml-make-{name}-") and
               "-X-" not in k[0] for k in keys) == 5


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_deterministic_and_seed_dependent(name):
    a = dask.compute(*GENERATORS[name](chunks=(40, 40, 23), random_state=3))
    b = dask.compute(*GENERATORS[name](chunks=(40, 40, 23), random_state=3))
    c = dask.compute(*GENERATORS[name](chunks=(40, 40, 23), random_state=4))
    for u, v in zip(a, b):
        assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    X1, _ = GENERATORS[name](chunks=40, random_state=3)
    X2, _ = GENERATORS[name](chunks=40, random_state=3)
    X3, _ = GENERATORS[name](chunks=40, random_state=4)
    assert X1.name == X2.name != X3.name  # names carry a deterministic token
    # random_state=None: fresh data each time
    fresh = [GENERATORS[name](random_state=None)[0].name for _ in range(2)]
    assert fresh[0] != fresh[1]


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_chunks_are_independent_of_the_rest(name):
    """A chunk depends only on (seed, chunk index): computing one block alone gives it."""
    X, y = GENERATORS[name](chunks=25, random_state=1)
    full = X.compute()
    assert_array_equal(X.blocks[2].compute(), full[50:75])


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_float32(name):
    X, y = GENERATORS[name](chunks=50, random_state=0, dtype=np.float32)
    assert X.dtype == np.float32 and X._meta.dtype == np.float32
    X64, _ = GENERATORS[name](chunks=50, random_state=0)
    Xc = X.compute()
    assert Xc.dtype == np.float32
    assert_allclose(Xc, X64.compute(), rtol=1e-6, atol=1e-6)
    if name == "regression":
        assert y.dtype == np.float32 and y.compute().dtype == np.float32
    else:
        assert y.dtype == np.int64


def test_building_is_lazy_with_a_counting_scheduler():
    get, calls = _counting_scheduler()
    with dask.config.set(scheduler=get):
        # about 800 GB each: nothing runs, nothing of that size is allocated
        make_blobs(n_samples=10**9, n_features=100, random_state=0)
        make_classification(n_samples=10**9, n_features=100, random_state=0)
        make_regression(n_samples=10**9, n_features=100, random_state=0, coef=True)
        make_ratings(n_users=10**8, n_items=10**4, random_state=0)
        assert calls == []
        X, _ = make_blobs(n_samples=20, chunks=10, random_state=0)
        X.compute()
    assert len(calls) == 1


def test_building_is_lazy_on_a_cluster(c):
    X, y = make_blobs(n_samples=200, chunks=50, random_state=0)
    X2, y2 = make_classification(n_samples=200, chunks=50, random_state=0)
    X3, y3 = make_regression(n_samples=200, n_features=5, chunks=50, random_state=0)
    r = make_ratings(n_users=100, n_items=50, chunks=30, random_state=0)
    assert len(c.who_has()) == 0
    assert c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
    # and the graphs run on the cluster, with readable task names
    Xc, yc, train = c.compute([X, y, r.train], sync=True)
    assert Xc.shape == (200, 2) and sp.issparse(train)
    assert_array_equal(Xc, X.compute(scheduler="sync"))


def test_huge_sizes_build_without_materialising():
    X, y = make_classification(n_samples=10**9, n_features=200, random_state=0)
    assert X.shape == (10**9, 200)
    assert X.nbytes > 1e12
    # default chunks fit in dask's array.chunk-size
    assert X.chunks[0][0] * 200 * 8 <= dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    X, y = make_blobs(n_samples=50, random_state=0)
    assert X.numblocks == (1, 1)  # small data: one chunk


@pytest.mark.parametrize("make", [make_blobs, make_classification, make_regression])
@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"),
    ({"n_features": 0}, "n_features"),
    ({"chunks": 0}, "chunks"),
    ({"chunks": (10, 10)}, "sum"),
    ({"chunks": "auto"}, "chunks"),
    ({"dtype": np.int32}, "dtype"),
    ({"array_type": "torch"}, "array_type"),
    ({"random_state": -1}, "random_state"),
    ({"random_state": "a"}, "random_state"),
])
def test_bad_common_arguments(make, kwargs, match):
    kw = {"n_samples": 30, "n_features": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        make(**kw)


def test_cupy_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(ImportError, match=r"skdml\[gpu\]"):
        make_blobs(n_samples=10, array_type="cupy")


class _FakeCupyArray(np.ndarray):
    pass


def _fake_cupy():
    mod = types.ModuleType("cupy")
    mod.ndarray = _FakeCupyArray
    mod.asarray = lambda a, dtype=None: np.asarray(a, dtype=dtype).view(_FakeCupyArray)
    mod.empty = lambda shape, dtype=None: np.empty(shape, dtype=dtype).view(_FakeCupyArray)
    mod.is_available = lambda: True
    return mod


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_cupy_plumbing_with_a_stand_in_module(monkeypatch, name):
    """array_type='cupy' sets a CuPy meta and converts blocks inside the chunk task."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    X, y = GENERATORS[name](chunks=50, random_state=0, array_type="cupy", dtype=np.float32)
    assert isinstance(X._meta, _FakeCupyArray) and isinstance(y._meta, _FakeCupyArray)
    assert X._meta.dtype == np.float32
    blocks = X.blocks[0].compute(scheduler="sync", optimize_graph=False)
    assert isinstance(blocks, _FakeCupyArray)
    ref, _ = GENERATORS[name](chunks=50, random_state=0, dtype=np.float32)
    assert_array_equal(np.asarray(X.compute(scheduler="sync")), ref.compute())


def test_cupy_no_gpu_is_a_clear_error(monkeypatch):
    mod = _fake_cupy()
    mod.is_available = lambda: False
    monkeypatch.setitem(sys.modules, "cupy", mod)
    with pytest.raises(ValueError, match="GPU"):
        make_regression(n_samples=10, array_type="cupy")


@pytest.mark.gpu
def test_cupy_on_a_gpu():
    cupy = pytest.importorskip("cupy")
    if not cupy.is_available():
        pytest.skip("no CUDA GPU")
    X, y = make_blobs(n_samples=100, chunks=30, random_state=0, array_type="cupy")
    assert isinstance(X._meta, cupy.ndarray)
    Xc = X.compute()
    assert isinstance(Xc, cupy.ndarray)
    ref, _ = make_blobs(n_samples=100, chunks=30, random_state=0)
    assert_array_equal(Xc.get(), ref.compute())


# ------------------------------------------------------------------------------------------
# make_blobs
# ------------------------------------------------------------------------------------------
def test_blobs_points_near_their_centers():
    X, y, centers = make_blobs(n_samples=600, n_features=4, centers=5, cluster_std=0.5,
                               chunks=(100, 250, 250), random_state=0, return_centers=True)
    Xc, yc = dask.compute(X, y)
    assert isinstance(centers, np.ndarray) and centers.shape == (5, 4)
    assert np.all((centers >= -10) & (centers <= 10))
    assert set(np.unique(yc)) == set(range(5))
    assert_array_equal(np.bincount(yc), [120] * 5)  # balanced like scikit-learn
    dist = np.linalg.norm(Xc - centers[yc], axis=1)
    assert dist.mean() == pytest.approx(0.5 * np.sqrt(4) * 0.94, rel=0.15)  # E|N(0, s^2 I_4)|
    for k in range(5):
        assert_allclose(Xc[yc == k].mean(axis=0), centers[k], atol=0.25)


def test_blobs_fixed_centers_and_per_center_std():
    centers = np.array([[0.0, 0.0, 0.0], [100.0, 100.0, 100.0]])
    X, y = make_blobs(n_samples=401, centers=centers, cluster_std=[0.1, 3.0], chunks=100,
                      random_state=0)
    assert X.shape == (401, 3)  # n_features comes from the centers
    Xc, yc = dask.compute(X, y)
    assert_array_equal(np.bincount(yc), [201, 200])
    assert Xc[yc == 0].std() == pytest.approx(0.1, rel=0.2)
    assert Xc[yc == 1].std() == pytest.approx(3.0, rel=0.2)


@pytest.mark.parametrize("kwargs, match", [
    ({"centers": 0}, "centers"),
    ({"centers": np.zeros((0, 2))}, "centers"),
    ({"centers": [1.0, 2.0]}, "centers"),
    ({"centers": [[np.nan, 1.0]]}, "finite"),
    ({"centers": 3, "cluster_std": [1.0, 2.0]}, "cluster_std"),
    ({"cluster_std": -1.0}, "cluster_std"),
    ({"center_box": (0.0,)}, "center_box"),
])
def test_blobs_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_blobs(n_samples=10, **kwargs)


# ------------------------------------------------------------------------------------------
# make_classification
# ------------------------------------------------------------------------------------------
def test_classification_easy_problem_is_learnable():
    X, y = make_classification(n_samples=1000, n_features=10, n_informative=4, n_redundant=2,
                               n_clusters_per_class=1, class_sep=2.0, flip_y=0.0, chunks=250,
                               random_state=0)
    Xc, yc = dask.compute(X, y)
    assert yc.dtype == np.int64 and set(np.unique(yc)) == {0, 1}
    clf = LogisticRegression(max_iter=1000).fit(Xc[:500], yc[:500])
    assert clf.score(Xc[500:], yc[500:]) > 0.8
    # redundant columns are exact linear combinations of the informative ones
    coef, *_ = np.linalg.lstsq(Xc[:, :4], Xc[:, 4:6], rcond=None)
    assert_allclose(Xc[:, :4] @ coef, Xc[:, 4:6], atol=1e-8)
    # the remaining columns are standard normal noise
    assert_allclose(Xc[:, 6:].std(axis=0), 1.0, atol=0.1)
    assert_allclose(Xc[:, 6:].mean(axis=0), 0.0, atol=0.15)


def test_classification_weights_and_classes():
    X, y = make_classification(n_samples=1000, n_features=8, n_informative=3, n_classes=3,
                               weights=[0.6, 0.1], flip_y=0.0, chunks=(300, 300, 400),
                               random_state=0)
    counts = np.bincount(y.compute(), minlength=3) / 1000
    assert_allclose(counts, [0.6, 0.1, 0.3], atol=0.01)  # within a row per chunk and cluster
    # every chunk holds every class, in proportion
    assert_allclose(np.bincount(y.blocks[0].compute(), minlength=3) / 300, [0.6, 0.1, 0.3],
                    atol=0.01)


def test_classification_flip_y_and_balance():
    X, y = make_classification(n_samples=1000, n_features=5, flip_y=0.5, chunks=200,
                               random_state=0)
    yc = y.compute()
    assert abs(yc.mean() - 0.5) < 0.06
    X0, y0 = make_classification(n_samples=1000, n_features=5, flip_y=0.0, chunks=200,
                                 random_state=0)
    assert_array_equal(np.bincount(y0.compute()), [500, 500])


def test_classification_matches_sklearn_statistics():
    """Same generative model: per-column spread comparable with sklearn's (shuffle=False)."""
    from sklearn.datasets import make_classification as sk_make_classification

    kw = dict(n_samples=1000, n_features=8, n_informative=3, n_redundant=1, flip_y=0.0)
    X, _ = make_classification(chunks=500, random_state=0, **kw)
    Xs, _ = sk_make_classification(random_state=0, shuffle=False, **kw)
    Xc = X.compute()
    # noise columns: identical distribution
    assert_allclose(Xc[:, 4:].std(axis=0), Xs[:, 4:].std(axis=0), rtol=0.15)
    # informative columns: same order of magnitude (mixture of transformed Gaussians)
    ratio = Xc[:, :3].std(axis=0).mean() / Xs[:, :3].std(axis=0).mean()
    assert 0.4 < ratio < 2.5


@pytest.mark.parametrize("kwargs, match", [
    ({"n_informative": 4, "n_redundant": 3, "n_features": 6}, "n_informative \\+ n_redundant"),
    ({"n_informative": 0}, "n_informative"),
    ({"n_redundant": -1}, "n_redundant"),
    ({"n_classes": 0}, "n_classes"),
    ({"n_classes": 3, "n_clusters_per_class": 2, "n_informative": 2}, "2\\*\\*n_informative"),
    ({"weights": [0.2, 0.3, 0.5]}, "weights"),
    ({"weights": [-0.5, 1.5]}, "weights"),
    ({"flip_y": 1.5}, "flip_y"),
    ({"class_sep": np.inf}, "class_sep"),
])
def test_classification_bad_arguments(kwargs, match):
    kw = {"n_samples": 10, "n_features": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_classification(**kw)


# ------------------------------------------------------------------------------------------
# make_regression
# ------------------------------------------------------------------------------------------
def test_regression_is_linear_without_noise():
    X, y, coef = make_regression(n_samples=300, n_features=8, n_informative=3, bias=2.5,
                                 coef=True, chunks=(100, 50, 150), random_state=0)
    Xc, yc = dask.compute(X, y)
    assert y.shape == (300,) and coef.shape == (8,)
    assert np.count_nonzero(coef) == 3 and np.all((coef >= 0) & (coef < 100))
    assert_allclose(yc, Xc @ coef + 2.5, rtol=1e-10, atol=1e-10)
    assert_allclose(Xc.std(), 1.0, atol=0.1)


def test_regression_noise_and_multi_target():
    X, y, coef = make_regression(n_samples=400, n_features=5, n_targets=3, noise=2.0,
                                 coef=True, chunks=100, random_state=0)
    assert y.shape == (400, 3) and y.chunks == ((100,) * 4, (3,)) and coef.shape == (5, 3)
    Xc, yc = dask.compute(X, y)
    resid = yc - Xc @ coef
    assert resid.std() == pytest.approx(2.0, rel=0.15)
    # n_informative is capped at n_features, as in scikit-learn
    _, _, w = make_regression(n_samples=10, n_features=4, n_informative=10, coef=True,
                              random_state=0)
    assert np.count_nonzero(w) == 4


def test_regression_float32_target_follows_returned_X():
    X, y, coef = make_regression(n_samples=100, n_features=4, coef=True, dtype=np.float32,
                                 random_state=0)
    Xc, yc = dask.compute(X, y)
    assert_allclose(yc, (Xc.astype(np.float64) @ coef).astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_targets": 0}, "n_targets"),
    ({"noise": -1.0}, "noise"),
    ({"n_informative": -1}, "n_informative"),
    ({"bias": np.nan}, "bias"),
])
def test_regression_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_regression(n_samples=10, **kwargs)


# ------------------------------------------------------------------------------------------
# make_ratings
# ------------------------------------------------------------------------------------------
def _ratings(**kw):
    args = dict(n_users=600, n_items=200, density=0.05, rank=4, chunks=(100, 250, 250),
                random_state=0)
    args.update(kw)
    return make_ratings(**args)


def test_ratings_shapes_types_and_density():
    r = _ratings()
    assert isinstance(r, Ratings) and r.shape == (600, 200)
    assert r.train.shape == (600, 200) and r.train.chunks == ((100, 250, 250), (200,))
    assert isinstance(r.train._meta, sp.csr_matrix) and r.train.dtype == np.float64
    assert r.train.name.startswith("skdml-make-ratings-train-")
    assert r.test.shape[1] == 3 and r.test.numblocks == (3, 1) and r.test.dtype == np.float64
    assert r.user_factors.shape == (600, 4) and r.user_factors.chunks[0] == r.train.chunks[0]
    assert r.item_factors.shape == (200, 4) and r.item_popularity.shape == (200,)
    assert "Ratings(n_users=600" in repr(r)
    train, test, U = dask.compute(r.train, r.test, r.user_factors)
    assert isinstance(train, sp.csr_matrix) and train.shape == (600, 200)
    assert isinstance(U, np.ndarray)
    nnz = train.nnz + len(test)
    assert nnz / (600 * 200) == pytest.approx(0.05, rel=0.1)
    assert len(test) / nnz == pytest.approx(0.1, abs=0.03)
    assert np.all(np.isfinite(train.data)) and np.all(np.isfinite(test))
    assert train.data.min() >= 1 and train.data.max() <= 5
    assert test[:, 2].min() >= 1 and test[:, 2].max() <= 5
    # test indices are global and valid
    assert np.all(test[:, :2] == np.round(test[:, :2]))
    assert test[:, 0].max() < 600 and test[:, 1].max() < 200 and test[:, 0].max() >= 350
    # explicit values follow the low-rank model (noise 0.1 plus clipping to [1, 5])
    rows, cols = train.nonzero()
    pred = np.clip(np.einsum("ij,ij->i", U[rows], r.item_factors[cols]), 1, 5)
    assert np.abs(np.asarray(train[rows, cols]).ravel() - pred).mean() < 0.15


def test_ratings_train_and_test_are_disjoint_and_distinct():
    r = _ratings(test_fraction=0.3)
    train, test = dask.compute(r.train, r.test)
    train_pairs = set(zip(*train.nonzero()))
    test_pairs = set(zip(test[:, 0].astype(int), test[:, 1].astype(int)))
    assert len(test_pairs) == len(test)  # no duplicate held-out pair
    assert not train_pairs & test_pairs
    assert train.has_canonical_format  # sorted, no duplicate entries


def test_ratings_popularity_skew():
    skewed = _ratings(skew=1.5).train.compute()
    flat = _ratings(skew=0.0).train.compute()
    counts = np.sort(np.bincount(skewed.indices, minlength=200))[::-1]
    assert counts[:5].mean() > 10 * np.median(counts)
    flat_counts = np.bincount(flat.indices, minlength=200)
    assert flat_counts.max() < 3 * max(np.median(flat_counts), 1)
    # the popularity vector says which items are popular
    pop = _ratings(skew=1.5).item_popularity
    top = np.argsort(pop)[::-1][:5]
    assert np.bincount(skewed.indices, minlength=200)[top].mean() > 10 * np.median(counts)


def test_ratings_implicit_and_float32():
    r = _ratings(implicit=True, dtype=np.float32)
    assert r.implicit and r.train.dtype == np.float32
    train = r.train.compute()
    assert train.dtype == np.float32
    assert np.all(train.data >= 1) and np.all(train.data == np.round(train.data))
    assert train.data.mean() > 2


def test_ratings_deterministic_and_seed_dependent():
    a = dask.compute(_ratings().train, _ratings().test)
    b = dask.compute(_ratings().train, _ratings().test)
    c = _ratings(random_state=1).train.compute()
    assert (a[0] != b[0]).nnz == 0
    assert_array_equal(a[1], b[1])
    assert a[0].shape == c.shape and (a[0] != c).nnz > 0
    assert _ratings().train.name == _ratings().train.name != _ratings(random_state=1).train.name


def test_ratings_full_density_and_one_chunk_default():
    r = make_ratings(n_users=30, n_items=20, density=1.0, test_fraction=0.0, random_state=0)
    assert r.train.numblocks == (1, 1)
    train = r.train.compute()
    assert train.nnz == 600 and r.test.compute().shape == (0, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_users": 0}, "n_users"),
    ({"n_items": 0}, "n_items"),
    ({"density": 0.0}, "density"),
    ({"density": 1.5}, "density"),
    ({"rank": 0}, "rank"),
    ({"skew": -1.0}, "skew"),
    ({"noise": -0.1}, "noise"),
    ({"test_fraction": 1.0}, "test_fraction"),
    ({"test_fraction": -0.1}, "test_fraction"),
    ({"chunks": (10, 10)}, "n_users"),
    ({"dtype": np.int64}, "dtype"),
])
def test_ratings_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ratings(**{"n_users": 50, "n_items": 20, **kwargs})


def test_ratings_graph_is_one_task_per_chunk():
    r = _ratings()
    graph = dict(r.train.__dask_graph__())
    names = {k[0] if isinstance(k, tuple) else k for k in graph}
    prefixes = {n.rsplit("-", 1)[0] for n in names}
    assert prefixes == {"skdml-make-ratings", "skdml-make-ratings-model",
                        "skdml-make-ratings-train"}
    assert len(graph) == 1 + 3 + 3
    assert isinstance(r.train, da.Array)
