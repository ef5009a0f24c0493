"""Tests of skdml.cluster.KMeans against scikit-learn, on the session cluster (``c``) and on
Dask's threaded scheduler."""
import re

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr
from dask.utils import key_split
from distributed import Client, get_task_stream
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs as sk_make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skdml
from skdml.cluster import KMeans
from skdml.datasets import make_blobs


def _hard_data(n=900, d=6, seed=0):
    """Overlapping clusters: Lloyd needs tens of iterations (exercises the stopping rule)."""
    return np.random.default_rng(seed).standard_normal((n, d))


def _blobs(n=1000, d=20, centers=8, seed=0, std=1.0):
    X, _ = sk_make_blobs(n, d, centers=centers, cluster_std=std, random_state=seed)
    return X


def _same_partition(a, b):
    """Labels equal up to a permutation of the cluster ids."""
    a, b = np.asarray(a), np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


CHUNKINGS = [pytest.param(900, id="one-partition"), pytest.param((100, 450, 7, 343), id="uneven"),
             pytest.param(128, id="8-partitions")]


# -- agreement with scikit-learn from the same initial centers ---------------------------------
@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("tol", [1e-4, 0.0, 1e-2])
def test_matches_sklearn_lloyd_from_same_init(c, chunks, tol):
    X = _hard_data()
    init = X[np.random.default_rng(1).choice(len(X), 8, replace=False)]
    sk = SKKMeans(8, init=init, n_init=1, tol=tol, algorithm="lloyd").fit(X)
    km = KMeans(8, init=init, n_init=1, tol=tol).fit(da.from_array(X, chunks=(chunks, 6)))
    assert km.n_iter_ == sk.n_iter_ > 5
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-10, atol=1e-12)
    assert_array_equal(km.labels_.compute(), sk.labels_)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-10)


@pytest.mark.parametrize("max_iter", [1, 4])
def test_matches_sklearn_when_stopped_by_max_iter(c, max_iter):
    X = _hard_data()
    init = X[:8]
    sk = SKKMeans(8, init=init, n_init=1, max_iter=max_iter).fit(X)
    km = KMeans(8, init=init, n_init=1, max_iter=max_iter).fit(X)
    assert km.n_iter_ == sk.n_iter_ == max_iter
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-10)
    assert_array_equal(km.labels_, sk.labels_)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-10)


def test_sample_weight_matches_sklearn(c):
    X = _hard_data(seed=2)
    w = np.random.default_rng(0).random(len(X)) * 3
    init = X[:6]
    sk = SKKMeans(6, init=init, n_init=1).fit(X, sample_weight=w)
    km = KMeans(6, init=init, n_init=1).fit(da.from_array(X, chunks=250),
                                            sample_weight=da.from_array(w, chunks=250))
    assert km.n_iter_ == sk.n_iter_
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-10)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-10)
    assert_array_equal(km.labels_.compute(), sk.labels_)
    # integer weights are the same as repeating rows
    reps = np.random.default_rng(1).integers(0, 3, len(X))
    a = KMeans(6, init=init, n_init=1).fit(X, sample_weight=reps)
    b = KMeans(6, init=init, n_init=1).fit(np.repeat(X, reps, axis=0))
    assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-8)
    assert_allclose(a.inertia_, b.inertia_, rtol=1e-8)


def test_float32_stays_float32_and_matches_sklearn(c):
    X = _hard_data().astype(np.float32)
    init = X[:8]
    sk = SKKMeans(8, init=init, n_init=1).fit(X)
    km = KMeans(8, init=init, n_init=1).fit(da.from_array(X, chunks=300))
    assert km.cluster_centers_.dtype == np.float32
    assert km.transform(X).dtype == np.float32
    assert km.n_iter_ == sk.n_iter_
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-4, atol=1e-5)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-4)
    assert (km.labels_.compute() == sk.labels_).mean() > 0.999


def test_empty_cluster_reseeded_like_sklearn(c):
    X = _hard_data(n=400, d=3)
    init = np.vstack([X[:3], [[100.0, 100.0, 100.0]]])  # the far center gets no point
    sk = SKKMeans(4, init=init, n_init=1).fit(X)
    km = KMeans(4, init=init, n_init=1).fit(da.from_array(X, chunks=90))
    assert km.n_iter_ == sk.n_iter_
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-10)
    assert_allclose(km.inertia_, sk.inertia_, rtol=1e-10)


def test_transform_score_predict_match_sklearn(c):
    X = _hard_data()
    init = X[:5]
    sk = SKKMeans(5, init=init, n_init=1).fit(X)
    km = KMeans(5, init=init, n_init=1).fit(X)
    new = _hard_data(n=50, seed=9)
    assert_allclose(km.transform(new), sk.transform(new), rtol=1e-9)
    assert_array_equal(km.predict(new), sk.predict(new))
    assert_allclose(km.score(new), sk.score(new), rtol=1e-10)
    w = np.arange(50.0)
    assert_allclose(km.score(new, sample_weight=w), sk.score(new, sample_weight=w), rtol=1e-10)
    assert_array_equal(km.predict(X), km.labels_)  # the final E-step and predict agree
    assert_allclose(km.fit_transform(X), sk.fit_transform(X), rtol=1e-9)
    assert_array_equal(km.fit_predict(X), sk.fit_predict(X))


# -- initialisation ---------------------------------------------------------------------------
def test_kmeans_parallel_within_one_percent_of_sklearn_best_of_10(c):
    X = _blobs(std=2.0)
    best = SKKMeans(8, init="k-means++", n_init=10, random_state=0).fit(X).inertia_
    for seed in range(3):
        km = KMeans(8, random_state=seed).fit(da.from_array(X, chunks=200))
        assert km.inertia_ <= best * 1.01


@pytest.mark.parametrize("init", ["k-means||", "k-means++", "random"])
def test_same_result_for_any_chunking_and_split_every(c, init):
    X = _blobs(n=600, d=5, centers=5, std=3.0)
    ref = None
    for chunks in (600, (50, 250, 300), 77):
        for split_every in (2, 8):
            with skdml.config.set(split_every=split_every):
                km = KMeans(5, init=init, random_state=0).fit(da.from_array(X, chunks=(chunks, 5)))
            if ref is None:
                ref = km
                continue
            assert km.n_iter_ == ref.n_iter_
            assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9, atol=1e-12)
            assert_allclose(km.inertia_, ref.inertia_, rtol=1e-12)
            assert_array_equal(km.labels_.compute(), ref.labels_.compute())


def test_threaded_scheduler_gives_the_same_result(session_cluster):
    X = _blobs(n=500, d=4, centers=4, std=2.0)
    with Client(session_cluster, set_as_default=True):
        with_client = KMeans(4, random_state=3).fit(da.from_array(X, chunks=100))
    assert skdml.get_client() is None  # no Client: Dask's threaded scheduler
    without = KMeans(4, random_state=3).fit(da.from_array(X, chunks=100))
    assert_allclose(without.cluster_centers_, with_client.cluster_centers_, rtol=1e-10)
    assert without.inertia_ == pytest.approx(with_client.inertia_, rel=1e-10)


def test_random_state_reproducible_and_n_init_keeps_best(c):
    X = _blobs(n=400, d=3, centers=6, std=2.5)
    a = KMeans(6, init="random", n_init=4, random_state=5).fit(X)
    b = KMeans(6, init="random", n_init=4, random_state=5).fit(X)
    assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    singles = [KMeans(6, init="random", n_init=1, random_state=s).fit(X).inertia_
               for s in range(3)]
    assert a.inertia_ <= max(singles) * (1 + 1e-12)
    assert len(set(a.labels_.tolist())) == 6


def test_n_init_auto():
    assert KMeans(init="random")._resolve_n_init("random") == 10
    assert KMeans()._resolve_n_init("k-means||") == 1
    assert KMeans(init="k-means++")._resolve_n_init("k-means++") == 1
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        assert KMeans(n_init=3)._resolve_n_init("array") == 1


def test_callable_init(c):
    X = _hard_data(n=200, d=3)
    seen = {}

    def init(data, n_clusters, random_state):
        seen["type"] = type(data)
        return np.asarray(data[:n_clusters])

    KMeans(3, init=init, n_init=1).fit(X)
    assert seen["type"] is np.ndarray
    KMeans(3, init=init, n_init=1).fit(da.from_array(X, chunks=50))
    assert seen["type"] is da.Array
    km = KMeans(3, init=init, n_init=1).fit(X)
    sk = SKKMeans(3, init=X[:3], n_init=1).fit(X)
    assert_allclose(km.cluster_centers_, sk.cluster_centers_, rtol=1e-10)


def test_few_distinct_points_warns(c):
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(3\) found "
                                                r"smaller than n_clusters \(4\)"):
        km = KMeans(4, random_state=0).fit(X)
    assert km.inertia_ == pytest.approx(0.0, abs=1e-12)


# -- inputs and outputs ------------------------------------------------------------------------
def test_dask_input_gives_lazy_outputs(c, counting_scheduler):
    X = _blobs(n=400, d=4, centers=3)
    Xd = da.from_array(X, chunks=100)
    km = KMeans(3, random_state=0).fit(Xd)
    assert isinstance(km.labels_, da.Array)
    assert km.labels_.dtype == np.int32
    assert key_split(km.labels_.name) == "skdml-kmeans-predict"
    counting = counting_scheduler
    with dask.config.set(scheduler=counting), get_task_stream(c) as ts:
        pred = km.predict(Xd)
        dist = km.transform(Xd)
        score = km.score(Xd)
    assert counting.calls == 0
    assert not ts.data  # nothing submitted to the cluster either
    assert isinstance(pred, da.Array) and isinstance(dist, da.Array)
    assert dist.chunks == (Xd.chunks[0], (3,))
    assert_array_equal(pred.compute(), km.labels_.compute())
    assert score.compute() == pytest.approx(-km.inertia_, rel=1e-10)
    assert isinstance(km.cluster_centers_, np.ndarray)


def test_numpy_pandas_xarray_inputs(c):
    X = _blobs(n=300, d=3, centers=3)
    ref = KMeans(3, random_state=0).fit(X)
    assert isinstance(ref.labels_, np.ndarray)
    assert not hasattr(ref, "feature_names_in_")
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    km = KMeans(3, random_state=0).fit(df)
    assert_array_equal(km.feature_names_in_, ["a", "b", "c"])
    assert_allclose(km.cluster_centers_, ref.cluster_centers_)
    assert isinstance(km.labels_, np.ndarray)
    assert_array_equal(km.get_feature_names_out(), ["kmeans0", "kmeans1", "kmeans2"])
    with pytest.raises(ValueError, match="Feature names"):
        km.predict(pd.DataFrame(X, columns=["a", "c", "b"]))
    arr = xr.DataArray(X, dims=("time", "feature"),
                       coords={"time": np.arange(300) * 10, "feature": ["a", "b", "c"]})
    kx = KMeans(3, random_state=0).fit(arr)
    assert isinstance(kx.labels_, xr.DataArray)
    assert_array_equal(kx.labels_["time"], np.arange(300) * 10)
    assert_array_equal(kx.labels_.values, ref.labels_)
    dist = kx.transform(arr.chunk({"time": 100}))
    assert isinstance(dist, xr.DataArray) and isinstance(dist.data, da.Array)
    assert dist.dims == ("time", "cluster")
    kl = KMeans(3, random_state=0).fit(X.tolist())
    assert_allclose(kl.cluster_centers_, ref.cluster_centers_)


def test_integer_input_becomes_float64(c):
    X = np.random.default_rng(0).integers(0, 10, (100, 3))
    km = KMeans(3, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float64


def test_bad_inputs(c):
    X = _hard_data(n=50, d=3)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KMeans(3).fit(bad)
    with pytest.raises(ValueError, match=r"NaN \(first in row 7"):
        KMeans(3).fit(da.from_array(bad, chunks=20))
    with pytest.raises(NotFittedError):
        KMeans(3).predict(X)
    km = KMeans(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3"):
        km.predict(X[:, :2])
    with pytest.raises(ValueError, match=re.escape("n_samples=50 should be >= n_clusters=51.")):
        KMeans(51).fit(X)
    with pytest.raises(TypeError, match="KMeans does not accept sparse input"):
        KMeans(3).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="does not match the number of clusters 3"):
        KMeans(3, init=X[:2]).fit(X)
    with pytest.raises(ValueError, match="does not match the number of features of the data 3"):
        KMeans(3, init=X[:3, :2]).fit(X)
    with pytest.raises(ValueError, match="'tol' parameter of KMeans must be"):
        KMeans(3, tol=-1).fit(X)
    with pytest.raises(ValueError, match="'algorithm' parameter"):
        KMeans(3, algorithm="elkan").fit(X)
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        KMeans(3).fit(X, sample_weight=np.zeros(50))
    with pytest.raises(ValueError, match="negative"):
        KMeans(3).fit(da.from_array(X, chunks=10),
                      sample_weight=da.from_array(-np.ones(50), chunks=10))


# -- engine use --------------------------------------------------------------------------------
def test_task_names_and_verbose(c, capsys):
    X = _blobs(n=400, d=4, centers=4)
    with get_task_stream(c) as ts:
        KMeans(4, random_state=0, verbose=1).fit(da.from_array(X, chunks=100))
    names = {key_split(rec["key"]) for rec in ts.data}
    for stage in ("init-sample", "init-select", "init-weigh", "lloyd", "assign"):
        assert f"skdml-kmeans-{stage}" in names
    out = capsys.readouterr().out
    assert "k-means|| round 0" in out
    assert re.search(r"Iteration 0, inertia [0-9.e+]+, center shift", out)
    assert "Converged at iteration" in out


def test_make_blobs_end_to_end(c):
    X, y = make_blobs(n_samples=2000, n_features=5, centers=4, chunks=500, random_state=1)
    km = KMeans(4, random_state=0).fit(X)
    assert _same_partition(km.labels_.compute(), y.compute())


# -- Lloyd passes submitted ahead of the client's reading (cluster only) ------------------------
def _fits(X, **kw):
    km = KMeans(**kw).fit(X)
    return km, km.labels_.compute() if hasattr(km.labels_, "compute") else km.labels_


@pytest.mark.parametrize("case", ["converges", "runs-stop-apart", "empty-cluster", "weights",
                                  "max-iter"])
def test_passes_submitted_ahead_give_the_client_loop_bits(c, monkeypatch, case):
    # Each pass's tasks compute their centers from the last pass's sums, as the client does;
    # any difference in bits, or in when a run stops or a cluster is re-seeded, shows here.
    from skdml.cluster import _kmeans

    X = _hard_data(n=600, d=4)
    sw = None
    kw = dict(n_clusters=5, init="k-means++", n_init=1, random_state=1)
    if case == "runs-stop-apart":
        kw.update(init="random", n_init=4)
    elif case == "empty-cluster":
        kw.update(n_clusters=4, init=np.vstack([X[:3], [[50.0] * 4]]))
    elif case == "weights":
        sw = da.from_array(np.random.default_rng(2).uniform(0.2, 3.0, 600), chunks=150)
    elif case == "max-iter":
        kw.update(max_iter=4, tol=0)
    # persisted first: both fits then group the partitions on the workers alike (a sum's
    # bits depend on its order, which follows where the partitions are)
    Xd = da.from_array(X, chunks=150).persist()
    sw = sw.persist() if sw is not None else None
    results = {}
    for mode, pipeline, resident in (("plain", False, False), ("ahead", True, False),
                                     ("resident", True, True)):
        monkeypatch.setattr(_kmeans, "_PIPELINE", pipeline)
        with skdml.config.set(resident=resident):
            km = KMeans(**kw).fit(Xd, sample_weight=sw)
        results[mode] = (km, km.labels_.compute())
    plain, plain_labels = results["plain"]
    assert plain.n_iter_ > 2
    for mode in ("ahead", "resident"):
        km, labels = results[mode]
        assert km.n_iter_ == plain.n_iter_
        assert_array_equal(km.cluster_centers_, plain.cluster_centers_)
        assert km.inertia_ == plain.inertia_
        assert_array_equal(labels, plain_labels)


def _log_passes(monkeypatch):
    from skdml.cluster import _kmeans

    events = []
    submit, read = _kmeans._Driver._pass, _kmeans._Driver._read

    def logged_pass(self, fn, *args, **kwargs):
        events.append("pass")
        return submit(self, fn, *args, **kwargs)

    def logged_read(lloyd_pass):
        events.append("read")
        return read(lloyd_pass)

    monkeypatch.setattr(_kmeans._Driver, "_pass", logged_pass)
    monkeypatch.setattr(_kmeans._Driver, "_read", staticmethod(logged_read))
    return events


def test_each_pass_goes_out_before_the_last_is_read(c, monkeypatch):
    events = _log_passes(monkeypatch)
    X = _hard_data(n=600, d=4)
    # the loop pass by pass (a resident loop submits no passes); a backup copy that wins
    # changes the order
    with skdml.config.set(speculative=False, resident=False):
        km = KMeans(5, init=X[:5], n_init=1, max_iter=6, tol=0).fit(
            da.from_array(X, chunks=150))
    assert km.n_iter_ == 6
    # the first two passes go out together; then each read is preceded by the next pass
    assert events == ["pass", "pass", "read"] + ["pass", "read"] * 4 + ["read"]


def test_threaded_scheduler_submits_one_pass_per_read(monkeypatch):
    # without a cluster a pass runs when it is read: one submitted ahead would run twice
    assert skdml.get_client() is None
    events = _log_passes(monkeypatch)
    X = _hard_data(n=600, d=4)
    KMeans(5, init=X[:5], n_init=1, max_iter=3, tol=0).fit(da.from_array(X, chunks=150))
    assert events == ["pass", "read"] * 3


def test_next_pass_task_skips_when_the_client_must_decide():
    from skdml.cluster import _kmeans

    X = _hard_data(n=300, d=3)
    w = np.ones(300)
    prev = X[None, :4].copy()
    shift = X[:4].mean(axis=0)
    C2, e = _kmeans._terms(prev[0], shift, np.float64)
    stats = _kmeans._lloyd_task(X, w, C2, e, n_runs=1, with_inertia=True, shift=None)
    kw = dict(prev=prev, shift=shift, dtype=np.float64, tol=1e-4, tol_abs=1e-12, first=False,
              force_iter=False, with_inertia=True)
    out = _kmeans._lloyd_next_task(X, w, stats, **kw)
    new = _kmeans._average(np.asarray(stats["sums"]).reshape(4, 3),
                           np.asarray(stats["weights"]).reshape(4))
    C2n, en = _kmeans._terms(new, shift, np.float64)
    expected = _kmeans._lloyd_task(X, w, C2n, en, n_runs=1, with_inertia=True, shift=None)
    for key in expected:
        assert_array_equal(out[key], expected[key])
    # a run that stops (here: tolerance above its shift) and an empty cluster: skipped
    assert _kmeans._lloyd_next_task(X, w, stats, **{**kw, "tol_abs": 1e9}) is None
    empty = dict(stats, weights=np.concatenate([np.asarray(stats["weights"])[:3], [0.0]]))
    assert _kmeans._lloyd_next_task(X, w, empty, **kw) is None
    # unless the iterations are forced: then only the empty cluster
    assert _kmeans._lloyd_next_task(X, w, stats, **{**kw, "tol_abs": 1e9,
                                                     "force_iter": True}) is not None
    assert _kmeans._lloyd_next_task(X, w, empty, **{**kw, "force_iter": True}) is None
    assert _kmeans._add_or_skip(None, stats) is None


def test_refit_on_the_persisted_input_reuses_no_key_of_the_lazy_fit(c, caplog):
    """A persisted array keeps its lazy original's name: a fit on each must not submit a key
    of the other computed another way (distributed warns of failures and deadlocks then)."""
    X, _ = sk_make_blobs(n_samples=400, n_features=4, centers=3, random_state=0)
    Xl = da.from_array(X, chunks=100) * 1.0  # lazy: the stage is fused with the product
    init = X[:3]
    with caplog.at_level("WARNING", logger="distributed.scheduler"):
        first = KMeans(3, init=init, n_init=1).fit(Xl)
        Xp = c.persist(Xl)
        assert Xp.name == Xl.name
        second = KMeans(3, init=init, n_init=1).fit(Xp)
    assert "different `run_spec`" not in caplog.text
    assert_allclose(first.cluster_centers_, second.cluster_centers_)
