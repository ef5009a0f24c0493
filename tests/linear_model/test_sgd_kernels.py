"""The mini-batch SGD kernels, on NumPy and array_api_strict.

The strongest check: with ``batch_size=1`` and the rows in their natural order, one epoch of
``local_sgd`` is scikit-learn's per-sample SGD (``shuffle=False, max_iter=1``) for every loss,
penalty and schedule.
"""
import itertools
import math

import array_api_compat.numpy as np_xp
import array_api_strict
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.linear_model import SGDClassifier, SGDRegressor

from skdml.linear_model import _sgd_kernels as K

XPS = [pytest.param(np_xp, id="numpy"), pytest.param(array_api_strict, id="array_api_strict")]


def _arr(xp, a, dtype=None):
    a = np.asarray(a)
    if dtype is None:
        dtype = xp.float64 if a.dtype.kind == "f" else xp.int64
    return xp.asarray(a, dtype=dtype)


def _np(a):
    return None if a is None else np.asarray(a)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y_bin = (X[:, 0] + 0.3 * rng.standard_normal(60) > 0).astype(np.int64)
    y_multi = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((60, 3)), axis=1).astype(np.int64)
    y_reg = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(60)
    w = rng.uniform(0.2, 2.0, 60)
    return X, y_bin, y_multi, y_reg, w


def _run(xp, X, y, cfg, *, sample_weight=None, class_weight=None, batch_size=1, rows=None,
         t=1.0, lr_scale=None, dtype=None, curvature=None):
    dtype = xp.float64 if dtype is None else dtype
    k, d = cfg.n_outputs, X.shape[1]
    model = K.init_model(xp.zeros((k, d), dtype=dtype), xp.zeros(k, dtype=dtype), cfg, xp=xp)
    rows = np.arange(X.shape[0]) if rows is None else rows
    Xx = X if sp.issparse(X) else _arr(xp, X, dtype)
    return K.local_sgd(Xx, _arr(xp, y) if cfg.classifier else _arr(xp, y, dtype),
                       None if sample_weight is None else _arr(xp, sample_weight, dtype), model,
                       _arr(xp, rows), batch_size=batch_size, t=t,
                       lr_scale=lr_scale or (1.0,) * k, cfg=cfg, class_weight=class_weight,
                       curvature=curvature, xp=xp)


# -- against scikit-learn's per-sample SGD --------------------------------------------------------
SCHEDULES = ["optimal", "constant", "invscaling"]
PENALTIES = ["l2", "l1", "elasticnet", None]


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("loss", K.CLASSIFICATION_LOSSES)
def test_batch_of_one_is_sklearn_sgd_classifier(xp, loss, data):
    X, y, _, _, _ = data
    for penalty, schedule, average in itertools.product(PENALTIES, SCHEDULES, [False, 7]):
        if average and penalty in ("l1", "elasticnet"):
            # scikit-learn's lazily updated average does not see its own L1 truncations; ours
            # averages the actual iterates (checked separately below)
            continue
        kw = dict(loss=loss, penalty=penalty, learning_rate=schedule, eta0=0.05, alpha=0.01,
                  average=average)
        ref = SGDClassifier(shuffle=False, max_iter=1, tol=None, **kw).fit(X, y)
        cfg = K.SGDConfig(loss=loss, penalty=penalty, learning_rate=schedule, eta0=0.05,
                          alpha=0.01, average=int(average), power_t=0.5)
        out = _run(xp, X, y, cfg)
        coef = out["avg_coef"] if average else out["coef"]
        intercept = out["avg_intercept"] if average else out["intercept"]
        got = np.concatenate([_np(coef).ravel(), _np(intercept)])
        want = np.concatenate([ref.coef_.ravel(), ref.intercept_])
        # unbounded losses under the "optimal" rate diverge to huge weights: compare relatively
        scale = max(1.0, np.abs(want).max())
        assert_allclose(got / scale, want / scale, atol=1e-9,
                        err_msg=f"{loss} {penalty} {schedule} average={average}")


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("loss", K.REGRESSION_LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_batch_of_one_is_sklearn_sgd_regressor(xp, loss, penalty, data):
    X, _, _, y, w = data
    ref = SGDRegressor(loss=loss, penalty=penalty, shuffle=False, max_iter=1, tol=None,
                       alpha=0.01).fit(X, y, sample_weight=w)
    cfg = K.SGDConfig(loss=loss, classifier=False, penalty=penalty, learning_rate="invscaling",
                      eta0=0.01, power_t=0.25, alpha=0.01)
    out = _run(xp, X, y, cfg, sample_weight=w)
    assert_allclose(_np(out["coef"])[0], ref.coef_, atol=1e-10)
    assert_allclose(_np(out["intercept"]), ref.intercept_, atol=1e-10)


@pytest.mark.parametrize("xp", XPS)
def test_multiclass_one_vs_rest_with_weights_is_sklearn(xp, data):
    X, _, y, _, w = data
    cw = {0: 2.0, 1: 0.5, 2: 1.5}
    ref = SGDClassifier(loss="log_loss", shuffle=False, max_iter=1, tol=None, alpha=0.01,
                        class_weight=cw).fit(X, y, sample_weight=w)
    cfg = K.SGDConfig(loss="log_loss", n_outputs=3, alpha=0.01)
    out = _run(xp, X, y, cfg, sample_weight=w, class_weight=(2.0, 0.5, 1.5))
    assert_allclose(_np(out["coef"]), ref.coef_, atol=1e-10)
    assert_allclose(_np(out["intercept"]), ref.intercept_, atol=1e-10)


@pytest.mark.parametrize("xp", XPS)
def test_binary_class_weight_is_sklearn(xp, data):
    X, y, _, _, _ = data
    ref = SGDClassifier(loss="hinge", shuffle=False, max_iter=1, tol=None, alpha=0.01,
                        class_weight={0: 3.0, 1: 0.5}).fit(X, y)
    out = _run(xp, X, y, K.SGDConfig(loss="hinge", alpha=0.01), class_weight=(3.0, 0.5))
    assert_allclose(_np(out["coef"]), ref.coef_, atol=1e-10)


def test_sparse_rows_are_sklearn_sparse_sgd(data):
    X, y, _, _, _ = data
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    ref = SGDClassifier(loss="modified_huber", shuffle=False, max_iter=1, tol=None,
                        alpha=0.01).fit(Xs, y)
    cfg = K.SGDConfig(loss="modified_huber", alpha=0.01, intercept_decay=0.01)
    out = _run(np_xp, Xs, y, cfg)
    assert_allclose(out["coef"], ref.coef_, atol=1e-10)
    assert_allclose(out["intercept"], ref.intercept_, atol=1e-10)


def test_sparse_and_dense_blocks_agree(data):
    X, y, _, _, _ = data
    cfg = K.SGDConfig(loss="log_loss", n_outputs=1, penalty="elasticnet", average=3)
    dense = _run(np_xp, X, y, cfg, batch_size=7)
    sparse = _run(np_xp, sp.csr_matrix(X), y, cfg, batch_size=7)
    for key in dense:
        assert_allclose(np.asarray(sparse[key]), np.asarray(dense[key]), atol=1e-12)


@pytest.mark.parametrize("xp", XPS)
def test_slice_of_rows_is_the_same_as_their_indices(xp, data):
    X, _, y, _, w = data
    cfg = K.SGDConfig(loss="modified_huber", n_outputs=3, penalty="elasticnet", average=4)
    model = K.init_model(xp.zeros((3, 4), dtype=xp.float64), xp.zeros(3, dtype=xp.float64), cfg,
                         xp=xp)
    args = (_arr(xp, X), _arr(xp, y), _arr(xp, w), model)
    kw = dict(batch_size=6, t=3.0, lr_scale=(1.0, 1.0, 1.0), cfg=cfg, class_weight=(1, 2, 3),
              xp=xp)
    by_slice = K.local_sgd(*args, slice(10, 47), **kw)
    by_index = K.local_sgd(*args, _arr(xp, np.arange(10, 47)), **kw)
    for key in ("coef", "intercept", "avg_coef", "avg_intercept", "q", "u", "loss"):
        assert_allclose(_np(by_slice[key]), _np(by_index[key]), rtol=1e-14, atol=1e-14)
    assert by_slice["t"] == by_index["t"] == 40.0


# -- the mini-batch rule ----------------------------------------------------------------------
@pytest.mark.parametrize("xp", XPS)
def test_minibatch_step_is_summed_gradient_at_the_start(xp, data):
    X, y, _, _, _ = data
    cfg = K.SGDConfig(loss="log_loss", penalty=None, learning_rate="constant", eta0=0.1)
    # one batch, from w = 0; a negligible curvature keeps the rate cap out of the way
    out = _run(xp, X, y, cfg, batch_size=60, curvature=1e-12)
    Y = np.where(y == 1, 1.0, -1.0)
    d = -Y / 2.0  # derivative of the log loss at margin 0
    assert_allclose(_np(out["coef"])[0], -0.1 * d @ X, atol=1e-12)
    assert_allclose(_np(out["intercept"]), [-0.1 * d.sum()], atol=1e-12)
    # with the partition's own curvature the same step is taken at the capped rate
    L = K.data_curvature(_arr(xp, X), cfg, xp=xp)
    rate = K.rate_cap(60, L, cfg)
    assert rate < 0.1
    capped = _run(xp, X, y, cfg, batch_size=60)
    assert_allclose(_np(capped["coef"])[0], -rate * d @ X, rtol=1e-12)
    # objective of the batch: 60 samples at log(2)
    assert_allclose(_np(out["loss"]), [60 * math.log(2.0)], rtol=1e-12)
    assert out["t"] == 61.0


@pytest.mark.parametrize("xp", XPS)
def test_l2_shrinkage_of_a_batch_is_per_sample_shrinkage(xp, data):
    X, y, _, _, _ = data
    cfg = K.SGDConfig(loss="hinge", alpha=0.01, learning_rate="constant", eta0=0.1)
    model = K.init_model(_arr(xp, np.ones((1, 4))), _arr(xp, np.zeros(1)), cfg, xp=xp)
    # rows far on the right side of the margin: no loss gradient, only the shrinkage
    Xf = _arr(xp, np.abs(X) * 0 + 10.0)
    out = K.local_sgd(Xf, _arr(xp, np.ones(60, dtype=np.int64)), None, model,
                      _arr(xp, np.arange(20)), batch_size=20, t=1.0, lr_scale=(1.0,),
                      cfg=cfg, curvature=1e-12, xp=xp)
    assert_allclose(_np(out["coef"]), np.full((1, 4), (1 - 0.1 * 0.01) ** 20), rtol=1e-12)


@pytest.mark.parametrize("xp", XPS)
def test_zero_rate_freezes_an_output(xp, data):
    X, _, y, _, _ = data
    cfg = K.SGDConfig(loss="hinge", n_outputs=3, average=1, penalty="elasticnet")
    out = _run(xp, X, y, cfg, batch_size=5, lr_scale=(1.0, 0.0, 0.2))
    coef, avg = _np(out["coef"]), _np(out["avg_coef"])
    assert np.all(coef[1] == 0) and np.all(avg[1] == 0) and _np(out["intercept"])[1] == 0
    assert np.any(coef[0] != 0) and np.any(coef[2] != 0)


@pytest.mark.parametrize("xp", XPS)
def test_no_rows_returns_the_model(xp, data):
    X, y, _, _, _ = data
    cfg = K.SGDConfig(loss="hinge", average=1, penalty="l1")
    out = _run(xp, X, y, cfg, rows=np.arange(0), t=5.0)
    assert out["t"] == 5.0
    assert np.all(_np(out["coef"]) == 0) and np.all(_np(out["loss"]) == 0)
    assert set(out) == {"coef", "intercept", "avg_coef", "avg_intercept", "q", "u", "loss", "t"}


@pytest.mark.parametrize("xp", XPS)
def test_inputs_are_not_modified_and_float32_stays(xp, data):
    X, y, _, _, w = data
    cfg = K.SGDConfig(loss="squared_hinge", penalty="elasticnet", average=2)
    model = K.init_model(_arr(xp, np.ones((1, 4)), xp.float32),
                         _arr(xp, np.ones(1), xp.float32), cfg, xp=xp)
    before = {k: np.asarray(v).copy() for k, v in model.items()}
    Xx = _arr(xp, X, xp.float32)
    out = K.local_sgd(Xx, _arr(xp, y), _arr(xp, w, xp.float32), model, _arr(xp, np.arange(60)),
                      batch_size=8, t=1.0, lr_scale=(1.0,), cfg=cfg, xp=xp)
    for k, v in model.items():
        np.testing.assert_array_equal(np.asarray(v), before[k])
    for k in ("coef", "intercept", "avg_coef", "avg_intercept", "q", "u"):
        assert out[k].dtype == xp.float32, k
    assert out["loss"].dtype == xp.float64
    np.testing.assert_array_equal(np.asarray(Xx), X.astype(np.float32))


@pytest.mark.parametrize("xp", XPS)
def test_late_averaging_starts_at_the_given_sample(xp, data):
    X, y, _, _, _ = data
    cfg = K.SGDConfig(loss="hinge", learning_rate="constant", eta0=0.1, average=61)
    out = _run(xp, X, y, cfg)  # the clock ends at 61: the average has not started yet
    assert np.all(_np(out["avg_coef"]) == 0)
    cfg = K.SGDConfig(loss="hinge", learning_rate="constant", eta0=0.1, average=60)
    out = _run(xp, X, y, cfg)  # only the last sample's iterate is averaged
    assert_allclose(_np(out["avg_coef"]), _np(out["coef"]))


# -- losses, penalty, validation sums ---------------------------------------------------------
def _reference_loss(name, p, y, eps=0.1):
    """scikit-learn's loss functions, one sample at a time."""
    z = p * y
    if name == "hinge":
        return (1 - z if z <= 1 else 0.0), (-y if z <= 1 else 0.0)
    if name == "perceptron":
        return (-z if z <= 0 else 0.0), (-y if z <= 0 else 0.0)
    if name == "squared_hinge":
        r = 1 - z
        return (r * r if r > 0 else 0.0), (-2 * y * r if r > 0 else 0.0)
    if name == "log_loss":
        return math.log1p(math.exp(-z)), -y / (1 + math.exp(z))
    if name == "modified_huber":
        if z >= 1:
            return 0.0, 0.0
        if z >= -1:
            return (1 - z) ** 2, -2 * (1 - z) * y
        return -4 * z, -4 * y
    if name == "squared_error":
        return 0.5 * (p - y) ** 2, p - y
    if name == "huber":
        r = p - y
        if abs(r) <= eps:
            return 0.5 * r * r, r
        return eps * (abs(r) - eps / 2), eps * math.copysign(1, r)
    if name == "epsilon_insensitive":
        return max(0.0, abs(y - p) - eps), (-1.0 if y - p > eps else 1.0 if p - y > eps else 0.0)
    if name == "squared_epsilon_insensitive":
        e = max(0.0, abs(y - p) - eps)
        z = y - p
        return e * e, (-2 * (z - eps) if z > eps else 2 * (-z - eps) if z < -eps else 0.0)
    raise AssertionError(name)


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("loss", K.CLASSIFICATION_LOSSES)
def test_losses_and_derivatives(xp, loss):
    p = np.linspace(-3.0, 3.0, 25)
    for y in (1.0, -1.0):
        P = _arr(xp, p[:, None])
        Y = _arr(xp, np.full((25, 1), y))
        L, D = K.loss_and_gradient(P, Y, K.SGDConfig(loss=loss), xp=xp)
        ref = np.array([_reference_loss(loss, pi, y) for pi in p])
        assert_allclose(_np(L)[:, 0], ref[:, 0], atol=1e-12)
        assert_allclose(_np(D)[:, 0], ref[:, 1], atol=1e-12)
        _, D2 = K.loss_and_gradient(P, Y, K.SGDConfig(loss=loss), xp=xp, need_loss=False)
        assert_allclose(_np(D2), _np(D))


@pytest.mark.parametrize("xp", XPS)
def test_penalty_value(xp):
    w = np.array([[1.0, -2.0, 0.0], [0.5, 0.5, -0.5]])
    for penalty, l1 in (("l2", 0.0), ("l1", 1.0), ("elasticnet", 0.3)):
        cfg = K.SGDConfig(loss="hinge", penalty=penalty, l1_ratio=0.3, alpha=0.1)
        want = 0.1 * ((1 - l1) * 0.5 * (w * w).sum(1) + l1 * np.abs(w).sum(1))
        assert_allclose(_np(K.penalty_value(_arr(xp, w), cfg, xp=xp, scale=2.0)), 2 * want)
    assert K.penalty_value(_arr(xp, w), K.SGDConfig(loss="hinge", penalty=None), xp=xp) is None


@pytest.mark.parametrize("xp", XPS)
def test_learning_rate_schedules(xp):
    cfg = K.SGDConfig(loss="hinge", alpha=0.01)
    typw = math.sqrt(1 / math.sqrt(0.01))
    assert K.base_learning_rate(cfg, 1.0) == pytest.approx(typw)
    assert K.base_learning_rate(cfg, 11.0) == pytest.approx(1 / (0.01 * (1 / (typw * 0.01) + 10)))
    inv = K.SGDConfig(loss="hinge", learning_rate="invscaling", eta0=0.5, power_t=0.25)
    assert K.base_learning_rate(inv, 16.0) == pytest.approx(0.25)
    for schedule in ("constant", "adaptive"):
        assert K.base_learning_rate(K.SGDConfig(loss="hinge", learning_rate=schedule,
                                                eta0=0.3), 99.0) == 0.3


def test_rate_cap():
    cfg = K.SGDConfig(loss="log_loss")
    assert K.rate_cap(K.FREE_ROWS, 5.0, cfg) == math.inf  # small batches: scikit-learn's rate
    m = K.FREE_ROWS + 92
    # the curvature is rounded up to an eighth of an octave: 4.0 stays, 5.0 becomes 2**2.375
    assert K.rate_cap(m, 4.0, cfg) == pytest.approx(1 / (92 * 0.25 * 4.0))
    assert K.rate_cap(m, 4.0, cfg, mean_weight=4.0) == pytest.approx(1 / (92 * 0.25 * 4.0 * 4))
    assert K.rate_cap(m, 5.0, cfg) == pytest.approx(1 / (92 * 0.25 * 2 ** 2.375))
    # last-bit differences of the estimate give the same cap
    assert K.rate_cap(m, 5.0 * (1 + 1e-15), cfg) == K.rate_cap(m, 5.0 * (1 - 1e-15), cfg)
    squared = K.SGDConfig(loss="squared_error", classifier=False)
    assert K.rate_cap(m, 4.0, squared) == pytest.approx(1 / (92 * 1.0 * 4.0))


@pytest.mark.parametrize("xp", XPS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_data_curvature(xp, fit_intercept):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6)) * np.array([3.0, 1, 1, 1, 0.5, 0.5]) + 0.3
    cfg = K.SGDConfig(loss="hinge", fit_intercept=fit_intercept)
    Z = np.hstack([X, np.ones((400, 1))]) if fit_intercept else X
    want = np.linalg.eigvalsh(Z.T @ Z / 400)[-1]
    got = K.data_curvature(_arr(xp, X), cfg, xp=xp, n_iter=30)
    assert got == pytest.approx(want, rel=1e-3)
    if xp is np_xp:  # sparse blocks are multiplied as they are
        assert K.data_curvature(sp.csr_matrix(X), cfg, xp=xp, n_iter=30) == pytest.approx(got)


@pytest.mark.parametrize("xp", XPS)
def test_large_batches_at_a_high_rate_stay_stable(xp):
    """A constant per-sample rate that is fine for one row at a time diverges when 200 rows are
    summed at one point; the curvature cap keeps it converging to the least-squares fit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 0.5
    cfg = K.SGDConfig(loss="squared_error", classifier=False, learning_rate="constant",
                      eta0=0.05, penalty=None)
    model = K.init_model(xp.zeros((1, 5), dtype=xp.float64), xp.zeros(1, dtype=xp.float64), cfg,
                         xp=xp)
    for _ in range(10):
        model = {k: v for k, v in K.local_sgd(_arr(xp, X), _arr(xp, y), None, model,
                                              _arr(xp, np.arange(2000)), batch_size=200,
                                              t=1.0, lr_scale=(1.0,), cfg=cfg, xp=xp).items()
                 if k in ("coef", "intercept")}
    assert_allclose(_np(model["coef"])[0], [1.0, -2.0, 0.5, 3.0, 0.0], atol=1e-2)
    assert_allclose(_np(model["intercept"]), [0.5], atol=1e-2)


@pytest.mark.parametrize("xp", XPS)
def test_validation_stats(xp, data):
    X, _, y, yr, w = data
    rng = np.random.default_rng(1)
    coef, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    rows = np.array([3, 7, 11, 20, 41])
    cfg = K.SGDConfig(loss="hinge", n_outputs=3)
    out = K.validation_stats(_arr(xp, X), _arr(xp, y), _arr(xp, w), _arr(xp, coef),
                             _arr(xp, b), _arr(xp, rows), cfg, xp=xp)
    s = X[rows] @ coef.T + b
    right = (s > 0) == (y[rows][:, None] == np.arange(3))
    assert_allclose(_np(out["correct"]), (right * w[rows][:, None]).sum(0))
    assert_allclose(_np(out["weight"]), [w[rows].sum()])
    cfg = K.SGDConfig(loss="squared_error", classifier=False)
    out = K.validation_stats(_arr(xp, X), _arr(xp, yr), None, _arr(xp, coef[:1]),
                             _arr(xp, b[:1]), _arr(xp, rows), cfg, xp=xp)
    p = X[rows] @ coef[0] + b[0]
    assert_allclose(_np(out["sse"]), [((yr[rows] - p) ** 2).sum()])
    assert_allclose(_np(out["wy"]), [yr[rows].sum()])
    assert_allclose(_np(out["wyy"]), [(yr[rows] ** 2).sum()])
    assert_allclose(_np(out["w"]), [5.0])


@pytest.mark.parametrize("xp", XPS)
def test_decision(xp, data):
    X = data[0]
    coef, b = np.arange(8.0).reshape(2, 4), np.array([1.0, -1.0])
    assert_allclose(_np(K.decision(_arr(xp, X), _arr(xp, coef), _arr(xp, b), xp=xp)),
                    X @ coef.T + b)


def test_model_keys_and_config():
    assert K.model_keys(K.SGDConfig(loss="hinge")) == ["coef", "intercept"]
    assert K.model_keys(K.SGDConfig(loss="hinge", average=1, penalty="elasticnet")) == [
        "coef", "intercept", "avg_coef", "avg_intercept", "q", "u"]
    assert K.SGDConfig(loss="hinge", penalty="elasticnet", l1_ratio=0.2).l1 == 0.2
    assert K.SGDConfig(loss="hinge", penalty=None).l1 == 0.0
    with pytest.raises(ValueError, match="Unknown loss"):
        K.loss_and_gradient(np.zeros((1, 1)), np.ones((1, 1)), K.SGDConfig(loss="nope"),
                            xp=np_xp)
