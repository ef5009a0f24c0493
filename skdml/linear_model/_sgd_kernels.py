"""Mini-batch SGD for linear models on one partition: pure array-API kernels.

Every function takes its array namespace ``xp`` (NumPy, CuPy or ``array_api_strict``) and uses
nothing else on the data: no Dask, no I/O, no mutation of the inputs. ``X`` may also be a
scipy.sparse CSR block, in which case only its own ``@`` and row indexing are used.

The model of a linear classifier or regressor is a dict of arrays:

``coef``          (K, d)  the weights; K = 1 for regression and binary classification, else the
                          number of classes (one-vs-rest, all classes trained together)
``intercept``     (K,)
``avg_coef``      (K, d)  averaged SGD (only when ``cfg.average``)
``avg_intercept`` (K,)
``q``             (K, d)  L1 penalty actually applied so far (only with an L1 part)
``u``             (K,)    L1 penalty that could have been applied so far (Tsuruoka et al. 2009)

The update of one mini-batch follows scikit-learn's per-sample SGD (``_plain_sgd``) with the
sum of the batch's gradients taken at the batch's starting point: the learning rate is the one
of the batch's first sample, the L2 shrinkage of its ``m`` samples is applied at once, the
truncated-gradient L1 step and the running average advance by ``m`` samples.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

__all__ = [
    "CLASSIFICATION_LOSSES",
    "REGRESSION_LOSSES",
    "SGDConfig",
    "base_learning_rate",
    "decision",
    "init_model",
    "local_sgd",
    "loss_and_gradient",
    "model_keys",
    "penalty_value",
    "validation_stats",
]

#: Losses scikit-learn's SGDClassifier accepts (the regression ones act on +-1 targets).
CLASSIFICATION_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron",
                         "squared_error", "huber", "epsilon_insensitive",
                         "squared_epsilon_insensitive")
#: Losses of SGDRegressor.
REGRESSION_LOSSES = ("squared_error", "huber", "epsilon_insensitive",
                     "squared_epsilon_insensitive")

#: Rows of a mini-batch that may be summed at one point at the schedule's rate; beyond, the rate
#: is capped by the curvature of the loss (see :func:`local_sgd`).
FREE_ROWS = 8

#: Bound on the second derivative of each loss in the score (1/4 for the logistic loss; the
#: non-smooth losses have bounded subgradients and use the same scale as the logistic loss).
LOSS_CURVATURE = {
    "hinge": 0.25, "perceptron": 0.25, "log_loss": 0.25, "epsilon_insensitive": 0.25,
    "modified_huber": 2.0, "squared_hinge": 2.0, "squared_epsilon_insensitive": 2.0,
    "squared_error": 1.0, "huber": 1.0,
}

#: Gradients are clipped to this magnitude, like scikit-learn's ``MAX_DLOSS``.
MAX_DLOSS = 1e12


@dataclass(frozen=True)
class SGDConfig:
    """Hyper-parameters of the kernels (plain Python values, hashable, cheap to ship).

    Parameters
    ----------
    loss : str
        One of :data:`CLASSIFICATION_LOSSES` (classifier) or :data:`REGRESSION_LOSSES`.
    classifier : bool
        Targets are class indices (encoded +-1 per output column) rather than numbers.
    n_outputs : int
        Rows of ``coef``: 1 for regression and binary classification, else the number of
        classes.
    epsilon : float
        Width of the insensitive region (epsilon-insensitive losses) or the Huber threshold.
    penalty : {"l2", "l1", "elasticnet", None}
    alpha : float
        Regularization strength.
    l1_ratio : float
        Elastic-net mixing (used only with ``penalty="elasticnet"``).
    fit_intercept : bool
    learning_rate : {"optimal", "constant", "invscaling", "adaptive"}
    eta0, power_t : float
        Schedule parameters, as in scikit-learn.
    average : int
        0: plain SGD. ``a >= 1``: average the iterates once the sample clock reaches ``a``.
    intercept_decay : float
        Factor on intercept updates (scikit-learn uses 0.01 for sparse input).
    compute_loss : bool
        Accumulate the objective (loss + penalty) of every sample, for convergence checks.
    """

    loss: str
    classifier: bool = True
    n_outputs: int = 1
    epsilon: float = 0.1
    penalty: str | None = "l2"
    alpha: float = 1e-4
    l1_ratio: float = 0.15
    fit_intercept: bool = True
    learning_rate: str = "optimal"
    eta0: float = 0.01
    power_t: float = 0.5
    average: int = 0
    intercept_decay: float = 1.0
    compute_loss: bool = True

    @property
    def l1(self) -> float:
        """Share of the penalty that is L1 (0 for L2 or no penalty, 1 for L1)."""
        if self.penalty == "l1":
            return 1.0
        if self.penalty == "elasticnet":
            return float(self.l1_ratio)
        return 0.0

    @property
    def has_l2(self) -> bool:
        return self.penalty in ("l2", "elasticnet")

    @property
    def has_l1(self) -> bool:
        return self.penalty in ("l1", "elasticnet")

    @property
    def optimal_init(self) -> float:
        """Offset ``t0`` of the "optimal" schedule ``eta = 1 / (alpha (t0 + t - 1))``.

        scikit-learn's heuristic (after Leon Bottou's sgd): the typical weight is
        ``typw = sqrt(1 / sqrt(alpha))`` and the first step is ``typw / max(1, dloss(-typw, 1))``;
        the derivative at a negative margin is negative for every supported loss, so the
        first step is ``typw``.
        """
        typw = math.sqrt(1.0 / math.sqrt(self.alpha))
        return 1.0 / (typw * self.alpha)


def model_keys(cfg):
    """The keys of a model dict under ``cfg``."""
    keys = ["coef", "intercept"]
    if cfg.average:
        keys += ["avg_coef", "avg_intercept"]
    if cfg.has_l1:
        keys += ["q", "u"]
    return keys


def init_model(coef, intercept, cfg, *, xp, avg_coef=None, avg_intercept=None, q=None, u=None):
    """A model dict from starting weights ``coef`` (K, d) and ``intercept`` (K,).

    The averaged weights start at zero (or ``avg_coef``), the L1 accumulators at zero.
    """
    model = {"coef": coef, "intercept": intercept}
    if cfg.average:
        model["avg_coef"] = xp.zeros_like(coef) if avg_coef is None else avg_coef
        model["avg_intercept"] = xp.zeros_like(intercept) if avg_intercept is None \
            else avg_intercept
    if cfg.has_l1:
        model["q"] = xp.zeros_like(coef) if q is None else q
        model["u"] = xp.zeros_like(intercept) if u is None else u
    return model


def base_learning_rate(cfg, t):
    """The schedule's per-sample learning rate at sample clock ``t`` (a Python float; the clock
    is 1-based like scikit-learn's).

    ``"optimal"``: ``1 / (alpha (t0 + t - 1))`` with scikit-learn's offset ``t0``;
    ``"invscaling"``: ``eta0 / t ** power_t``; ``"constant"`` and ``"adaptive"``: ``eta0`` (the
    adaptive division is applied by the driver through the per-output ``lr_scale``).
    """
    if cfg.learning_rate == "optimal":
        return 1.0 / (cfg.alpha * (cfg.optimal_init + t - 1.0))
    if cfg.learning_rate == "invscaling":
        return cfg.eta0 / math.pow(t, cfg.power_t)
    return cfg.eta0


def _issparse(X):
    mod = sys.modules.get("scipy.sparse")
    return mod is not None and mod.issparse(X)


def _take_rows(X, rows, xp, out=None):
    """Rows of ``X``; into ``out`` (a reused buffer) when the namespace allows it."""
    if _issparse(X):
        return X[rows]
    if out is not None:
        # NumPy buffers ``out`` unless mode != "raise"; the indices are in range by construction
        return xp.take(X, rows, axis=0, out=out[:rows.shape[0]], mode="clip")
    return xp.take(X, rows, axis=0)


def _gather_buffer(X, batch_size, xp):
    """A reused (batch_size, d) buffer for the mini-batch rows, for NumPy only.

    Dask's Nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so a temporary of more
    than 64 KiB allocated per mini-batch is returned to the system and page-faulted back every
    time: measured 2.5x slower epochs for 800 KB batches. Writing the rows into one buffer
    avoids that; the remaining per-batch temporaries are (batch_size, K), kept small by the
    driver's choice of batch size.
    """
    if _issparse(X) or not getattr(xp, "__name__", "").endswith(".numpy"):
        return None
    return xp.empty((min(batch_size, X.shape[0]), X.shape[1]), dtype=X.dtype)


def data_curvature(X, cfg, *, xp, n_rows=1024, n_iter=10):
    """Largest eigenvalue of the second moment of the rows ``(x, 1)`` (``x`` alone without an
    intercept), estimated by power iteration on the first ``n_rows`` rows of ``X``.

    It bounds how fast the summed gradient of a mini-batch changes with the model, per row and
    per unit of loss curvature. Sparse blocks are multiplied as they are (never densified).
    """
    S = X[:min(n_rows, X.shape[0]), :]
    n, d = S.shape
    if n == 0:
        return 1.0
    dtype = xp.float64
    v = xp.ones(d, dtype=dtype) / math.sqrt(d + 1.0)
    vb = 1.0 / math.sqrt(d + 1.0) if cfg.fit_intercept else 0.0
    lam = 1.0
    for _ in range(n_iter):
        z = xp.asarray(S @ v, dtype=dtype) + vb
        w = xp.asarray(S.T @ z, dtype=dtype) / n
        wb = float(xp.sum(z)) / n if cfg.fit_intercept else 0.0
        norm = math.sqrt(float(xp.sum(w * w)) + wb * wb)
        if not norm > 0:
            return 1.0
        lam = norm
        v, vb = w / norm, wb / norm
    return lam


def rate_cap(m, curvature, cfg, mean_weight=1.0):
    """The highest per-sample rate at which a mini-batch of ``m`` rows may sum its gradients at
    one point, or ``inf`` for up to :data:`FREE_ROWS` rows.

    Summing ``m`` gradients at one point stands for ``m`` successive per-sample steps only while
    the model would barely move within the batch: the change of the summed gradient over the
    step, about ``rate x m x loss curvature x data curvature`` times the step, must stay below
    it. Up to ``FREE_ROWS`` rows are taken as they come (scikit-learn's own early per-sample
    steps are large too); beyond, ``rate <= 1 / ((m - FREE_ROWS) kappa L w)``.
    """
    if m <= FREE_ROWS:
        return math.inf
    kappa = LOSS_CURVATURE.get(cfg.loss, 1.0) * _round_up(max(mean_weight, 1e-12))
    return 1.0 / ((m - FREE_ROWS) * kappa * _round_up(max(curvature, 1e-12)))


def _round_up(value):
    """``value`` rounded up to an eighth of an octave (at most 9% more).

    The curvature and the mean weight come from reductions whose last bit can depend on where
    the data sit in memory (SIMD loops peel unaligned heads); on the coarse grid such
    differences vanish, so a recomputed partition gives the same cap, and the fit stays
    reproducible bit for bit.
    """
    return 2.0 ** (math.ceil(math.log2(value) * 8.0) / 8.0)


def decision(X, coef, intercept, *, xp):
    """Scores ``X @ coef.T + intercept`` of shape (n, K) (``X`` dense or CSR)."""
    return X @ coef.T + intercept


def targets(y, cfg, *, xp, dtype):
    """The (m, K) targets of a batch: +-1 one-vs-rest codes of class indices, or the numbers."""
    if not cfg.classifier:
        return xp.reshape(xp.astype(y, dtype), (-1, 1))
    if cfg.n_outputs == 1:
        return xp.reshape(xp.where(y == 1, xp.asarray(1.0, dtype=dtype),
                                   xp.asarray(-1.0, dtype=dtype)), (-1, 1))
    hot = y[:, None] == xp.arange(cfg.n_outputs, dtype=y.dtype)[None, :]
    return xp.where(hot, xp.asarray(1.0, dtype=dtype), xp.asarray(-1.0, dtype=dtype))


#: Margins above this give a log-loss derivative below 1e-13: exp() is capped there, so it
#: cannot overflow (float32 included).
_EXP_CAP = 30.0

#: Losses whose derivative is unbounded (clipped to +-MAX_DLOSS, as scikit-learn does).
_UNBOUNDED = ("squared_hinge", "squared_error", "squared_epsilon_insensitive")


def loss_and_gradient(P, Y, cfg, *, xp, need_loss=True):
    """Per-element loss and derivative with respect to the score ``P`` (both (m, K)).

    Classification losses take +-1 targets ``Y`` (margin ``z = P Y``); regression losses take
    the numbers (the classifier passes +-1, as scikit-learn does). Returns ``(loss, dloss)``,
    ``loss`` being ``None`` when ``need_loss`` is False.
    """
    name = cfg.loss
    loss = None
    if name in ("hinge", "perceptron"):
        thr = 1.0 if name == "hinge" else 0.0
        z = P * Y
        hit = z <= thr
        d = xp.where(hit, -Y, 0.0)
        if need_loss:
            loss = xp.where(hit, thr - z, 0.0)
    elif name == "squared_hinge":
        r = 1.0 - P * Y
        r = xp.where(r > 0, r, 0.0)
        d = -2.0 * Y * r
        if need_loss:
            loss = r * r
    elif name == "log_loss":
        # d = -Y / (1 + exp(z)); loss = log(1 + exp(-z)) = log(1 + exp(z)) - z, with exp() capped
        # (beyond the cap both are below 1e-13)
        mz = xp.minimum(P * Y, _EXP_CAP)
        ope = 1.0 + xp.exp(mz)
        d = -Y / ope
        if need_loss:
            loss = xp.log(ope) - mz
    elif name == "modified_huber":
        z = P * Y
        mid = (z >= -1.0) & (z < 1.0)
        d = xp.where(z >= 1.0, 0.0, xp.where(mid, -2.0 * (1.0 - z) * Y, -4.0 * Y))
        if need_loss:
            loss = xp.where(z >= 1.0, 0.0, xp.where(mid, (1.0 - z) * (1.0 - z), -4.0 * z))
    elif name == "squared_error":
        d = P - Y
        if need_loss:
            loss = 0.5 * d * d
    elif name == "huber":
        r = P - Y
        a = xp.abs(r)
        inside = a <= cfg.epsilon
        d = xp.where(inside, r, cfg.epsilon * xp.sign(r))
        if need_loss:
            loss = xp.where(inside, 0.5 * r * r, cfg.epsilon * (a - 0.5 * cfg.epsilon))
    elif name == "epsilon_insensitive":
        r = Y - P
        d = xp.astype(-r > cfg.epsilon, P.dtype) - xp.astype(r > cfg.epsilon, P.dtype)
        if need_loss:
            loss = xp.maximum(xp.abs(r) - cfg.epsilon, 0.0)
    elif name == "squared_epsilon_insensitive":
        r = Y - P
        d = xp.where(r > cfg.epsilon, -2.0 * (r - cfg.epsilon),
                     xp.where(r < -cfg.epsilon, 2.0 * (-r - cfg.epsilon), 0.0))
        if need_loss:
            e = xp.maximum(xp.abs(r) - cfg.epsilon, 0.0)
            loss = e * e
    else:
        raise ValueError(f"Unknown loss {name!r}; use one of {CLASSIFICATION_LOSSES}.")
    return loss, d


def penalty_value(coef, cfg, *, xp, scale=1.0):
    """``alpha ((1 - l1) ||w||^2 / 2 + l1 ||w||_1)`` per output (K,), as scikit-learn's objective
    (times ``scale``); ``None`` without a penalty."""
    if cfg.penalty is None:
        return None
    l1 = cfg.l1
    out = None
    if l1 < 1.0:
        out = xp.sum(coef * coef, axis=1) * (scale * cfg.alpha * (1.0 - l1) * 0.5)
    if l1 > 0.0:
        term = xp.sum(xp.abs(coef), axis=1) * (scale * cfg.alpha * l1)
        out = term if out is None else out + term
    return out


def _class_weights(yb, class_weight, cfg, *, xp, dtype):
    """(m, K) weights of each sample for each output: scikit-learn's one-vs-rest rule.

    Binary: a sample weighs its own class's weight. Multiclass: in output k, a sample of class k
    weighs ``class_weight[k]`` and the others 1.
    """
    cw = xp.asarray(class_weight, dtype=dtype)
    if cfg.n_outputs == 1:
        return xp.reshape(xp.take(cw, yb, axis=0), (-1, 1))
    hot = yb[:, None] == xp.arange(cfg.n_outputs, dtype=yb.dtype)[None, :]
    return xp.where(hot, cw[None, :], 1.0)


def local_sgd(X, y, sample_weight, model, rows, *, batch_size, t, lr_scale, cfg,
              class_weight=None, clock_step=None, curvature=None, xp):
    """Run mini-batch SGD over ``rows`` of one partition, starting from ``model``.

    Parameters
    ----------
    X : array or scipy.sparse CSR matrix of shape (n, d)
        The partition.
    y : array of shape (n,)
        Class indices (int, ``cfg.classifier``) or target values.
    sample_weight : array of shape (n,) or None
    model : dict
        The starting model (see the module docstring); not modified.
    rows : 1-D int array or slice
        The rows to visit, in order; consecutive groups of ``batch_size`` make the mini-batches.
        A ``slice(start, stop)`` visits those rows in order without copying them (views).
    batch_size : int
    t : float
        Sample clock at the first row (1-based): drives the learning rate and the averaging.
    clock_step : float, default=None
        How far the clock moves per mini-batch; by default the batch's rows. The driver gives
        every partition of a round the same steps, so that replicas of different sizes learn
        at the same rate.
    curvature : float, default=None
        :func:`data_curvature` of the partition, for :func:`rate_cap`; computed here when None
        and a mini-batch has more than :data:`FREE_ROWS` rows.
    lr_scale : sequence of float, length K
        Per-output factor on the learning rate (the adaptive schedule's divisions; 0 freezes an
        output whose training has stopped).
    cfg : SGDConfig
    class_weight : sequence of float or None
        Per-class weights (2 entries for binary problems), or None.
    xp : namespace

    Returns
    -------
    dict
        The model after the last batch (same keys), plus ``"loss"``: per-output sums over the
        rows of loss + penalty (float64, zeros unless ``cfg.compute_loss``), and ``"t"``: the
        clock after the last row (a Python float).
    """
    # own copies, updated in place (the inputs are never modified)
    coef = xp.asarray(model["coef"], copy=True)
    intercept = xp.asarray(model["intercept"], copy=True)
    dtype = coef.dtype
    n_out = coef.shape[0]
    sparse = _issparse(X)
    # one learning rate for all outputs (the usual case) keeps the step sizes Python floats
    uniform = all(float(v) == float(lr_scale[0]) for v in lr_scale)
    scale = xp.asarray(lr_scale, dtype=dtype)
    active = xp.astype(scale > 0, dtype)
    avg = avg_b = q = u = None
    if cfg.average:
        avg = xp.asarray(model["avg_coef"], copy=True)
        avg_b = xp.asarray(model["avg_intercept"], copy=True)
    if cfg.has_l1:
        q = xp.asarray(model["q"], copy=True)
        u = xp.asarray(model["u"], copy=True)
    l1 = cfg.l1
    loss_sum = xp.zeros(n_out, dtype=xp.float64)
    contiguous = isinstance(rows, slice)
    if contiguous:  # rows start..stop in order: the mini-batches are views, nothing is copied
        offset, n_rows = rows.start, rows.stop - rows.start
    else:
        offset, n_rows = 0, int(rows.shape[0])
    if n_rows == 0:
        return _result(coef, intercept, avg, avg_b, q, u, loss_sum, t, cfg)
    buf = None if contiguous else _gather_buffer(X, batch_size, xp)

    def pick(a):
        return a[rows] if contiguous else xp.take(a, rows, axis=0)

    # targets and weights of the visited rows, once (then a slice per batch)
    y_rows = pick(y)
    Y_all = targets(y_rows, cfg, xp=xp, dtype=dtype)
    W_all = None
    if class_weight is not None:
        W_all = _class_weights(y_rows, class_weight, cfg, xp=xp, dtype=dtype)
    if sample_weight is not None:
        sw = xp.astype(pick(sample_weight), dtype)[:, None]
        W_all = sw if W_all is None else W_all * sw
    mean_weight = 1.0
    if W_all is not None and batch_size > FREE_ROWS:
        mean_weight = float(xp.mean(W_all))
    if curvature is None and batch_size > FREE_ROWS:
        curvature = data_curvature(X, cfg, xp=xp)
    for start in range(0, n_rows, batch_size):
        stop = min(start + batch_size, n_rows)
        m = stop - start
        if contiguous:
            Xb = X[offset + start:offset + stop, :]
        else:
            Xb = _take_rows(X, rows[start:stop], xp, buf)
        P = Xb @ coef.T
        P += intercept
        loss, G = loss_and_gradient(P, Y_all[start:stop, :], cfg, xp=xp,
                                    need_loss=cfg.compute_loss)
        if cfg.compute_loss:
            loss_sum += xp.sum(loss, axis=0)
            pen = penalty_value(coef, cfg, xp=xp, scale=float(m))
            if pen is not None:
                loss_sum += pen
        if cfg.loss in _UNBOUNDED:
            G = xp.clip(G, -MAX_DLOSS, MAX_DLOSS)
        if W_all is not None:
            G = G * W_all[start:stop, :]
        grad = (Xb.T @ G).T if sparse else G.T @ Xb
        base = min(base_learning_rate(cfg, t), rate_cap(m, curvature, cfg, mean_weight))
        if uniform:
            eta = base * float(lr_scale[0])
            if cfg.has_l2:
                # m samples' shrinkage at once; never below zero (scikit-learn's safeguard)
                coef *= max(0.0, 1.0 - (1.0 - l1) * cfg.alpha * eta) ** m
            grad *= eta
            coef -= grad
            if cfg.fit_intercept:
                intercept -= xp.sum(G, axis=0) * (cfg.intercept_decay * eta)
        else:
            eta = base * scale
            if cfg.has_l2:
                shrink = xp.maximum(1.0 - (1.0 - l1) * cfg.alpha * eta, 0.0) ** m
                coef *= shrink[:, None]
            coef -= eta[:, None] * grad
            if cfg.fit_intercept:
                intercept -= (cfg.intercept_decay * eta) * xp.sum(G, axis=0)
        if cfg.has_l1:
            # cumulative truncated gradient: push each weight toward zero by the penalty it
            # has not received yet, never across zero
            u += (l1 * cfg.alpha * m) * (eta * active if uniform else eta)
            before = xp.asarray(coef, copy=True)
            pos = xp.maximum(coef - (u[:, None] + q), 0.0)
            neg = xp.minimum(coef + (u[:, None] - q), 0.0)
            coef = xp.where(coef > 0, pos, xp.where(coef < 0, neg, coef))
            q += coef - before
        step = m if clock_step is None else clock_step
        if cfg.average:
            # the average of the iterates after the whole step (L1 included; scikit-learn's
            # lazily updated average does not see its L1 truncations)
            done = max(0.0, t - cfg.average)                 # samples averaged before
            new = max(0.0, t + step - max(t, cfg.average))    # samples of this batch averaged
            if new > 0:
                frac = (new / (done + new)) * active
                avg += (coef - avg) * frac[:, None]
                avg_b += (intercept - avg_b) * frac
        t += step
    return _result(coef, intercept, avg, avg_b, q, u, loss_sum, t, cfg)


def _result(coef, intercept, avg, avg_b, q, u, loss_sum, t, cfg):
    out = {"coef": coef, "intercept": intercept, "loss": loss_sum, "t": t}
    if cfg.average:
        out["avg_coef"], out["avg_intercept"] = avg, avg_b
    if cfg.has_l1:
        out["q"], out["u"] = q, u
    return out


def validation_stats(X, y, sample_weight, coef, intercept, rows, cfg, *, xp):
    """Sums for the validation score of the model (``coef``, ``intercept``) on ``rows``.

    Classifier: ``{"correct": (K,) weighted count of rows each output classifies right (the
    one-vs-rest accuracy scikit-learn's early stopping uses per output), "weight": total
    weight}``. Regressor: ``{"w", "wy", "wyy", "sse"}`` (weighted sums giving R^2). All float64.
    """
    dtype = coef.dtype
    Xv = _take_rows(X, rows, xp)
    yv = xp.take(y, rows, axis=0)
    w = xp.ones(int(rows.shape[0]), dtype=xp.float64) if sample_weight is None else \
        xp.astype(xp.take(sample_weight, rows, axis=0), xp.float64)
    P = Xv @ coef.T + intercept
    if cfg.classifier:
        Y = targets(yv, cfg, xp=xp, dtype=dtype)
        right = xp.astype((P > 0) == (Y > 0), xp.float64)
        return {"correct": xp.sum(right * w[:, None], axis=0),
                "weight": xp.reshape(xp.sum(w), (1,))}
    p = xp.astype(P[:, 0], xp.float64)
    yf = xp.astype(yv, xp.float64)
    r = yf - p
    return {"w": xp.reshape(xp.sum(w), (1,)), "wy": xp.reshape(xp.sum(w * yf), (1,)),
            "wyy": xp.reshape(xp.sum(w * yf * yf), (1,)),
            "sse": xp.reshape(xp.sum(w * r * r), (1,))}
