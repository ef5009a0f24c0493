"""The compiled (Numba) mini-batch SGD against the array-API kernel it stands in for.

The array-API ``local_sgd`` (tested on NumPy and array_api_strict in test_sgd_kernels.py) is the
reference: for every loss, penalty, weighting, averaging, output count, row order and dtype,
the compiled kernel must return the same model, objective and clock up to rounding.
"""
import array_api_compat.numpy as npx
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skdml
from skdml.linear_model import SGDClassifier, SGDRegressor
from skdml.linear_model import _sgd_fused as fused
from skdml.linear_model import _sgd_kernels as K
from skdml.linear_model._sgd import _batch_order

pytest.importorskip("numba")

CLASSIFIER_LOSSES = ["hinge", "perceptron", "squared_hinge", "log_loss", "modified_huber"]


def _data(n=403, d=7, n_classes=2, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, n_classes, n)
    return X, y, rng.random(n) + 0.5


def _run(impl, X, y, cfg, *, rows, sw=None, class_weight=None, lr_scale=None, start=None,
         batch_size=16, t=1.0, clock_step=None):
    K_out, d = cfg.n_outputs, X.shape[1]
    rng = np.random.default_rng(5)
    coef = (0.1 * rng.standard_normal((K_out, d))).astype(X.dtype) if start is None else start
    model = K.init_model(coef, np.full(K_out, 0.05, dtype=X.dtype), cfg, xp=npx)
    kw = dict(batch_size=batch_size, t=t, cfg=cfg, class_weight=class_weight,
              lr_scale=[1.0] * K_out if lr_scale is None else lr_scale, clock_step=clock_step)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if impl == "fused":
            return fused.local_sgd(X, y, sw, model, rows, **kw)
        return K.local_sgd(X, y, sw, model, rows, xp=npx, **kw)


def _compare(a, b, dtype):
    rtol = 2e-4 if dtype == np.float32 else 1e-9
    assert set(a) == set(b)
    assert a["t"] == b["t"]
    for key in a:
        if key == "t":
            continue
        assert np.asarray(a[key]).dtype == np.asarray(b[key]).dtype, key
        assert_allclose(a[key], b[key], rtol=rtol, atol=rtol * 1e-2, err_msg=key)


@pytest.mark.parametrize("loss", CLASSIFIER_LOSSES)
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet", None])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_losses_and_penalties(loss, penalty, n_classes):
    X, y, _ = _data(n_classes=n_classes)
    cfg = K.SGDConfig(loss=loss, penalty=penalty, n_outputs=1 if n_classes == 2 else n_classes,
                      alpha=1e-3)
    rows = np.random.default_rng(1).permutation(X.shape[0])
    _compare(_run("fused", X, y, cfg, rows=rows), _run("ref", X, y, cfg, rows=rows),
             np.float64)


@pytest.mark.parametrize("loss", K.REGRESSION_LOSSES)
def test_regressor_losses(loss):
    X, _, _ = _data()
    y = X @ np.arange(1.0, 8.0) + 0.3
    cfg = K.SGDConfig(loss=loss, classifier=False, learning_rate="invscaling", eta0=0.01,
                      epsilon=0.5)
    _compare(_run("fused", X, y, cfg, rows=slice(0, 403)),
             _run("ref", X, y, cfg, rows=slice(0, 403)), np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("order", ["contiguous", "slice-offset", "shuffled", "runs"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_weights_average_and_row_orders(dtype, order, n_classes):
    X, y, sw = _data(n_classes=n_classes, dtype=dtype)
    n_out = 1 if n_classes == 2 else n_classes
    cfg = K.SGDConfig(loss="log_loss", penalty="elasticnet", n_outputs=n_out, average=50)
    rng = np.random.default_rng(2)
    # "runs": a shuffle="batches" order, runs of 4 consecutive rows in a random order (the
    # compiled kernel reads a 16-row batch of 4 runs in place, through the row indices)
    runs = _batch_order(403, 64, rng)
    rows = {"contiguous": slice(0, 403), "slice-offset": slice(17, 390),
            "shuffled": rng.permutation(403)[:350], "runs": runs}[order]
    kw = dict(rows=rows, sw=sw, class_weight=[0.5, 2.0, 1.0][:n_classes], clock_step=12.5)
    _compare(_run("fused", X, y, cfg, **kw), _run("ref", X, y, cfg, **kw), dtype)


def test_per_output_rates_and_frozen_outputs():
    X, y, _ = _data(n_classes=3)
    cfg = K.SGDConfig(loss="hinge", penalty="l1", n_outputs=3, learning_rate="constant",
                      eta0=0.05, average=1)
    kw = dict(rows=slice(0, 403), lr_scale=[1.0, 0.2, 0.0])
    a, b = _run("fused", X, y, cfg, **kw), _run("ref", X, y, cfg, **kw)
    _compare(a, b, np.float64)
    start = _run("ref", X, y, cfg, rows=slice(0, 0))["coef"]
    assert_array_equal(a["coef"][2], start[2])  # rate 0: the output does not move


@pytest.mark.parametrize("n", [15, 16, 403])
def test_log_loss_sum_at_extreme_scores(n):
    """The log loss is summed through logarithms of products of 16 rows: scores far past the
    exp() cap on both sides (losses near 0 and in the thousands) still sum like the
    reference's row-by-row logarithms, for row counts below, at and off a multiple of 16."""
    X, y, _ = _data(n=n)
    X[::3] *= 400.0
    cfg = K.SGDConfig(loss="log_loss", penalty="l2", learning_rate="constant", eta0=1e-6)
    kw = dict(rows=slice(0, n), batch_size=8, start=np.full((1, 7), 0.5))
    a, b = _run("fused", X, y, cfg, **kw), _run("ref", X, y, cfg, **kw)
    _compare(a, b, np.float64)
    assert np.isfinite(a["loss"]).all() and a["loss"][0] > 1000.0


def test_small_batches_skip_the_curvature_cap():
    X, y, _ = _data()
    cfg = K.SGDConfig(loss="modified_huber")
    kw = dict(rows=slice(0, 403), batch_size=1)
    _compare(_run("fused", X, y, cfg, **kw), _run("ref", X, y, cfg, **kw), np.float64)


def test_empty_rows_and_untouched_inputs():
    X, y, sw = _data()
    cfg = K.SGDConfig(loss="log_loss", average=1, penalty="l1")
    before = X.copy(), y.copy(), sw.copy()
    out = _run("fused", X, y, cfg, rows=slice(10, 10), sw=sw)
    assert out["t"] == 1.0 and not out["loss"].any()
    _run("fused", X, y, cfg, rows=np.arange(403)[::-1], sw=sw)
    for a, b in zip((X, y, sw), before):
        assert_array_equal(a, b)


def test_usable_only_for_row_major_float_numpy_and_one_output():
    X, y, _ = _data()
    cfg = K.SGDConfig(loss="log_loss")
    assert fused.usable(X, y, cfg)
    assert not fused.usable(np.asfortranarray(X), y, cfg)
    assert not fused.usable(X.astype(np.int64), y, cfg)
    assert not fused.usable(X, y, K.SGDConfig(loss="log_loss", n_outputs=3))
    with skdml.config.set(jit=False):
        assert not fused.usable(X, y, cfg)


@pytest.mark.parametrize("Est, loss", [(SGDClassifier, "log_loss"),
                                       (SGDRegressor, "huber")])
@pytest.mark.parametrize("shuffle", [True, "batches"])
def test_estimator_is_the_same_with_and_without_jit(c, Est, loss, shuffle):
    """A gentle constant rate: the two paths then agree to rounding through a whole fit (with
    the default "optimal" rate and two-row batches the first steps are so large that rounding
    differences grow, as between any two BLAS builds; the quality stays the same)."""
    import dask.array as da

    X, y, _ = _data(n=1200, n_classes=3)
    if Est is SGDRegressor:
        y = X @ np.arange(1.0, 8.0)
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    fits, scores = [], []
    for jit in (True, False):
        with skdml.config.set(jit=jit):
            gentle = Est(loss=loss, max_iter=4, tol=None, random_state=0, average=True,
                         learning_rate="constant", eta0=0.01, shuffle=shuffle).fit(Xd, yd)
            default = Est(loss=loss, max_iter=4, tol=None, random_state=0).fit(Xd, yd)
        fits.append(gentle)
        scores.append(default.score(X, y))
    assert_allclose(fits[0].coef_, fits[1].coef_, rtol=1e-7, atol=1e-9)
    assert_allclose(fits[0].intercept_, fits[1].intercept_, rtol=1e-7, atol=1e-9)
    assert fits[0].t_ == fits[1].t_
    assert abs(scores[0] - scores[1]) < 0.05


def test_jit_setting_reaches_worker_processes(nanny_client):
    """The client's setting is what the tasks use, also in worker processes (whose own
    dask.config never sees a setting changed on the client): with jit=False a process cluster
    gives the array-API kernel's model bit for bit, as the threaded scheduler does; with
    jit=True the compiled kernel's rounding shows."""
    import dask
    import dask.array as da

    X, y, _ = _data(n=600)
    Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    params = dict(max_iter=2, tol=None, random_state=0, learning_rate="constant", eta0=0.01)
    with dask.config.set(scheduler="threads"):
        with skdml.config.set(jit=False):
            local = SGDClassifier(**params).fit(Xd, yd).coef_
        with skdml.config.set(jit=True):
            local_on = SGDClassifier(**params).fit(Xd, yd).coef_
    with nanny_client.as_current():
        with skdml.config.set(jit=False):
            off = SGDClassifier(**params).fit(Xd, yd).coef_
        # several fits: each time the blocks may sit on other workers, some fetched there
        # (unaligned) for the label count, and every partition must still run the compiled
        # kernel (it failed about one fit in two before the engine aligned fetched blocks)
        with skdml.config.set(jit=True):
            ons = [SGDClassifier(**params).fit(Xd, yd).coef_ for _ in range(3)]
    assert_array_equal(off, local)
    for on in ons:
        assert_array_equal(on, local_on)
    assert not np.array_equal(local_on, off)
    assert_allclose(local_on, off, rtol=1e-8)


@pytest.mark.parametrize("order", ["runs", "shuffled"])
def test_prefetching_rows_ahead_changes_no_bit(order, monkeypatch):
    # rows read through the index (runs) or copied into the buffer (shuffled) are requested
    # _AHEAD rows early; a hint only, so the model must be bit for bit the same without it
    X, y, sw = _data(n=2000, d=40)
    cfg = K.SGDConfig(loss="log_loss", penalty="elasticnet", average=10)
    rng = np.random.default_rng(3)
    rows = _batch_order(2000, 128, rng) if order == "runs" else rng.permutation(2000)
    kw = dict(rows=rows, sw=sw, class_weight=[0.5, 2.0], batch_size=128)
    assert fused._AHEAD > 0
    with_hint = _run("fused", X, y, cfg, **kw)
    monkeypatch.setattr(fused, "_AHEAD", 0)
    without = _run("fused", X, y, cfg, **kw)
    for key in with_hint:
        assert_array_equal(with_hint[key], without[key], err_msg=key)


def _least_peak(fn, tries=3):
    """The smallest of ``tries`` peaks of traced memory during ``fn()``: tracemalloc sees every
    thread, so a background thread of a cluster left by an earlier test can add to one peak."""
    import tracemalloc

    peaks = []
    tracemalloc.start()
    try:
        for _ in range(tries):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            fn()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return min(peaks)


def test_a_round_allocates_nothing_the_size_of_the_partition():
    # On a Dask worker (MALLOC_TRIM_THRESHOLD_ set by the nanny) every array over 128 KiB is
    # fresh memory, page-faulted in: per-round copies of the rows' targets and weights cost
    # about 5 ms per 250,000 rows there. The kernel reads them in place instead.
    n = 50_000
    X, y, sw = _data(n=n, d=4)
    cfg = K.SGDConfig(loss="log_loss", penalty="l1", average=10)
    kw = dict(rows=_batch_order(n, 256, np.random.default_rng(0)), sw=sw,
              class_weight=[0.5, 2.0], batch_size=256)
    _run("fused", X, y, cfg, **kw)  # compiled before measuring
    peak = _least_peak(lambda: _run("fused", X, y, cfg, **kw))
    assert peak < n * 8 / 4, peak  # under a quarter of one float64 value per row


def test_epoch_order_is_built_in_one_array():
    from skdml.linear_model._sgd import _order_task

    n = 50_000
    X = np.zeros((n, 2))
    for shuffle in ("batches", True):
        kw = dict(partition=0, seed=1, epoch=0, n_val=[0], shuffle=shuffle, batch=[977])
        order = _order_task(X, None, None, **kw)
        peak = _least_peak(lambda: _order_task(X, None, None, **kw))
        assert np.array_equal(np.sort(order), np.arange(n))
        assert peak < 1.2 * order.nbytes, (shuffle, peak)


@pytest.mark.parametrize("learning_rate", ["optimal", "constant", "adaptive"])
def test_array_schedule_gives_the_loops_bits(learning_rate):
    # without averaging the per-batch rates are computed as arrays; they must be the bits of
    # the reference's per-batch scalars (base_learning_rate, rate_cap, t += step)
    rng = np.random.default_rng(0)
    for _ in range(100):
        cfg = K.SGDConfig(loss="log_loss", learning_rate=learning_rate,
                          alpha=float(10 ** rng.uniform(-7, -1)), eta0=float(rng.uniform(0.01, 1)))
        n_rows, batch = int(rng.integers(1, 3000)), int(rng.integers(1, 400))
        t = float(rng.choice([1.0, rng.uniform(1, 1e6)]))
        step = None if rng.random() < 0.5 else float(rng.uniform(0.1, 500))
        curvature, mean_weight = float(rng.uniform(0.01, 100)), float(rng.uniform(0.5, 2))
        base, frac, t_end = fused._schedule(n_rows, batch, t, cfg, step, curvature, mean_weight)
        expected = []
        for b in range(-(-n_rows // batch)):
            m = min(batch, n_rows - b * batch)
            expected.append(min(K.base_learning_rate(cfg, t),
                                K.rate_cap(m, curvature, cfg, mean_weight)))
            t += m if step is None else step
        assert_array_equal(base, expected)
        assert not frac.any()
        assert t_end == t
