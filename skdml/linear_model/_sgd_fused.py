"""Compiled (Numba) mini-batch SGD for dense NumPy partitions.

:func:`skdml.linear_model._sgd_kernels.local_sgd` is the reference and the path for CuPy,
sparse blocks and every other namespace. On NumPy it pays a dozen array calls per mini-batch
(about 40 us each batch). Here one compiled loop visits the rows in the epoch's order (a
batch of consecutive rows or of long runs is read in place, any other is first copied into a
buffer), computes each row's scores, loss derivative and share of the batch's gradient while
the row is in cache (one pass over the data per epoch), and applies the batch's update exactly
as the reference does (L2 shrinkage of the batch at once, truncated-gradient L1, running
average).
Rows read through the order are requested a few rows ahead (a software prefetch,
:data:`_AHEAD`), so that jumping to a random run does not stall on memory. A row's target and
weight are read from the partition's own label and weight arrays as the row is visited
(class-index tables give the one-vs-rest codes and class weights): a round allocates nothing
the size of the partition, which on a Dask worker would be fresh, page-faulted memory.
The schedule's learning rate, its curvature cap and the averaging weights depend only on the
sample clock, so they are computed per batch in Python beforehand with the reference's own
functions.

Results equal the reference's up to rounding: the dot products are summed in a different order
(vectorised), and the batch gradients are accumulated in float64.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _config
from . import _sgd_kernels as kernels

__all__ = ["usable", "local_sgd"]

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, but may lack a wheel
    numba = None

#: Loss ids of the compiled kernel.
_LOSS_IDS = {"hinge": 0, "perceptron": 1, "squared_hinge": 2, "log_loss": 3,
             "modified_huber": 4, "squared_error": 5, "huber": 6, "epsilon_insensitive": 7,
             "squared_epsilon_insensitive": 8}


def _njit(fn):
    if numba is None:  # pragma: no cover
        return None
    # reassociation lets the dot products and the gradient sums vectorise; no "nnan"/"ninf":
    # an overflow must still show as inf/nan, for the driver's divergence check
    return numba.njit(cache=True, nogil=True,
                      fastmath={"reassoc", "contract", "nsz"})(fn)


def _make_prefetch():
    """``prefetch(a, j)``: hint the CPU to bring element ``j`` of the 1-D array ``a`` into
    cache (LLVM's ``llvm.prefetch``, a hint: it changes no result and cannot fault). Numba has
    no prefetch of its own."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, arr, j):
        def codegen(context, builder, signature, args):
            aryty, jty = signature.args
            ary = context.make_array(aryty)(context, builder, args[0])
            idx = context.cast(builder, args[1], jty, types.intp)
            ptr = cgutils.get_item_pointer2(
                context, builder, data=ary.data,
                shape=cgutils.unpack_tuple(builder, ary.shape, 1),
                strides=cgutils.unpack_tuple(builder, ary.strides, 1),
                layout=aryty.layout, inds=[idx], boundscheck=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = builder.module.declare_intrinsic(  # named for llvmlite's pointer mode
                "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
            # read (0), keep in all cache levels (3), data cache (1)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(arr, j), codegen

    return prefetch


def _no_prefetch(arr, j):  # pragma: no cover - only where the intrinsic cannot be built
    pass


_prefetch = None
if numba is not None:
    try:
        _prefetch = _make_prefetch()
    except Exception:  # pragma: no cover - a Numba whose extension API moved: no hint
        _prefetch = numba.njit(cache=True, nogil=True)(_no_prefetch)

#: Rows read through the epoch's order (``shuffle="batches"`` runs, or copied into the batch
#: buffer) are requested this many rows early: a jump to a new run, or a random row, would
#: otherwise wait for memory. Measured on one 250,000 x 100 float64 partition (log_loss, one
#: thread, medians of 6): "batches" 24.0 -> 21.4 ms (two concurrent kernels 25.8 -> 22.4 ms),
#: shuffle=True 51.1 -> 42.3 ms; 2 and 8 rows ahead gave about the same. Measured again (2026-11,
#: "batches" only): 18.8 ms without, 19.6 with, within the noise; prefetching whole runs ahead
#: (up to 64 rows) did not help either.
_AHEAD = 4

#: The log loss of this many rows is summed as the logarithm of a product (one ``log`` call
#: per 16 rows instead of one per row: a ``log`` cost 1.9 ms per 250,000 rows, measured,
#: about a tenth of a round's kernel): 16 factors of at most ``1 + e^30`` stay below 3e208.
_LOG_SPAN = 16


@_njit
def _log_loss_terms(p, y):
    """``(mz, 1 + exp(mz))`` of a score and target, ``mz = p * y`` capped like the reference's
    ``_EXP_CAP``: the log loss is ``log(1 + exp(mz)) - mz``, its derivative ``-y / (1 +
    exp(mz))``."""
    mz = min(p * y, 30.0)
    return mz, 1.0 + math.exp(mz)


@_njit
def _loss_grad(loss_id, p, y, eps):
    """(loss, derivative in the score) of one score ``p`` against target ``y``."""
    if loss_id == 0 or loss_id == 1:  # hinge (threshold 1), perceptron (threshold 0)
        thr = 1.0 if loss_id == 0 else 0.0
        z = p * y
        if z <= thr:
            return thr - z, -y
        return 0.0, 0.0
    if loss_id == 2:  # squared hinge
        r = max(1.0 - p * y, 0.0)
        return r * r, -2.0 * y * r
    if loss_id == 3:  # log loss
        mz, ope = _log_loss_terms(p, y)
        return math.log(ope) - mz, -y / ope
    if loss_id == 4:  # modified huber
        z = p * y
        if z >= 1.0:
            return 0.0, 0.0
        if z >= -1.0:
            return (1.0 - z) * (1.0 - z), -2.0 * (1.0 - z) * y
        return -4.0 * z, -4.0 * y
    if loss_id == 5:  # squared error
        d = p - y
        return 0.5 * d * d, d
    if loss_id == 6:  # huber
        r = p - y
        a = abs(r)
        if a <= eps:
            return 0.5 * r * r, r
        return eps * (a - 0.5 * eps), eps if r > 0 else (-eps if r < 0 else 0.0)
    r = y - p
    if loss_id == 7:  # epsilon-insensitive
        d = (1.0 if -r > eps else 0.0) - (1.0 if r > eps else 0.0)
        return max(abs(r) - eps, 0.0), d
    # squared epsilon-insensitive
    e = max(abs(r) - eps, 0.0)
    if r > eps:
        return e * e, -2.0 * (r - eps)
    if r < -eps:
        return e * e, 2.0 * (-r - eps)
    return e * e, 0.0


@_njit
def _target(v, k, classifier, ytab, f32):
    """Output ``k``'s target of a row whose label is ``v``: for a classifier, ``ytab[v, k]``
    (the +-1 one-vs-rest code of class index ``v``); else the number, rounded to float32 for
    float32 data (``f32``), as the reference's ``targets`` casts it to the data's dtype."""
    if classifier:
        return ytab[int(v), k]
    if f32:
        return float(np.float32(v))
    return float(v)


@_njit
def _row_weight(v, k, swv, cwt, has_cw, has_sw):
    """Output ``k``'s weight of a row of label ``v`` and sample weight ``swv``, computed in the
    data's dtype (that of ``cwt`` and ``swv``) like the reference's product of its two weight
    arrays: the class weight ``cwt[v, k]`` times the sample weight."""
    if has_cw and has_sw:
        return float(cwt[int(v), k] * swv)
    if has_cw:
        return float(cwt[int(v), k])
    return float(swv)


@_njit
def _mean_weight(rows, offset, contiguous, n_rows, n_out, y, cwt, sw):
    """Mean weight over the rows visited and the outputs (summed in float64)."""
    has_cw = cwt.shape[0] > 0
    has_sw = sw.shape[0] > 0
    total = 0.0
    for ii in range(n_rows):
        r = offset + ii if contiguous else rows[ii]
        for k in range(n_out):
            total += _row_weight(y[r], k, sw[r] if has_sw else sw.dtype.type(1), cwt, has_cw,
                                 has_sw)
    return total / (n_rows * n_out)


@_njit
def _sgd(X, rows, offset, contiguous, n_rows, y, classifier, ytab, cwt, sw, coef, intercept,
         avg, avg_b, q, u, base, frac, batch, scale, active, loss_id, eps, clip, alpha, l1,
         has_l2, has_l1, has_penalty, fit_intercept, intercept_decay, average, compute_loss,
         loss_sum, ahead, check, bad):
    K = coef.shape[0]
    d = coef.shape[1]
    has_cw = cwt.shape[0] > 0
    has_sw = sw.shape[0] > 0
    weighted = has_cw or has_sw
    f32 = X.itemsize == 4
    grad = np.empty((K, d))
    gsum = np.empty(K)
    n_batches = base.shape[0]
    buf = np.empty((0 if contiguous else min(batch, n_rows), d), dtype=X.dtype)
    # a gathered batch's labels and sample weights, copied with its rows (reading them at
    # random in the compute loop instead measured 45% slower with shuffle=True)
    vbuf = np.empty(buf.shape[0], dtype=y.dtype)
    sbuf = np.empty(buf.shape[0] if has_sw else 1, dtype=sw.dtype)
    line = max(1, 64 // X.itemsize)  # elements per cache line
    log_prod = compute_loss and loss_id == 3
    prod = np.ones(K)
    n_prod = 0
    for bi in range(n_batches):
        start = bi * batch
        stop = min(start + batch, n_rows)
        m = stop - start
        if compute_loss and has_penalty:  # the objective's penalty at the batch's start
            for k in range(K):
                w = coef[k]
                sq = 0.0
                ab = 0.0
                for f in range(d):
                    sq += w[f] * w[f]
                    ab += abs(w[f])
                pen = 0.0
                if l1 < 1.0:
                    pen += sq * (m * alpha * (1.0 - l1) * 0.5)
                if l1 > 0.0:
                    pen += ab * (m * alpha * l1)
                loss_sum[k] += pen
        grad[:] = 0.0
        gsum[:] = 0.0
        # how a batch's rows are read: 0, in place (consecutive rows: every batch of a
        # contiguous order); 1, through ``rows`` (runs of 8 or more rows on average, as
        # shuffle="batches" makes: each run streams at the memory's bandwidth); 2, gathered
        # into the buffer first (random rows come in at the memory's latency, and a plain
        # copy loop overlaps more of those loads than the compute loop: measured 48 against
        # 59 ms per 250,000 x 100 rows)
        mode = 0
        first = offset
        if not contiguous:
            breaks = 0
            for ii in range(start + 1, stop):
                if rows[ii] != rows[ii - 1] + 1:
                    breaks += 1
            if breaks == 0:
                first = rows[start] - start
            elif breaks * 8 <= m:
                mode = 1
            else:
                mode = 2
                for ii in range(start, stop):
                    if ahead > 0 and ii + ahead < n_rows:
                        ra = rows[ii + ahead]
                        nxt = X[ra]
                        for f in range(0, d, line):
                            _prefetch(nxt, f)
                        _prefetch(y, ra)
                        if has_sw:
                            _prefetch(sw, ra)
                    r = rows[ii]
                    src = X[r]
                    dst = buf[ii - start]
                    for f in range(d):
                        dst[f] = src[f]
                    vbuf[ii - start] = y[r]
                    if has_sw:
                        sbuf[ii - start] = sw[r]
        for ii in range(start, stop):
            r = first + ii if mode == 0 else rows[ii]
            if mode == 0:
                x = X[r]
            elif mode == 1:
                x = X[r]
                if ahead > 0 and ii + ahead < n_rows:
                    nxt = X[rows[ii + ahead]]
                    for f in range(0, d, line):
                        _prefetch(nxt, f)
            else:
                x = buf[ii - start]
            swv = sbuf[0]
            if mode == 2:
                v = vbuf[ii - start]
                if has_sw:
                    swv = sbuf[ii - start]
            else:
                v = y[r]
                if has_sw:
                    swv = sw[r]
            for k in range(K):
                w = coef[k]
                p = intercept[k]
                for f in range(d):
                    p += x[f] * w[f]
                if check and bad[0] < 0 and not math.isfinite(p):
                    bad[0] = r  # NaN or infinity in the row (or a model that overflowed)
                yk = _target(v, k, classifier, ytab, f32)
                if log_prod:
                    # the log loss, its logarithms taken of products of _LOG_SPAN factors
                    mz, ope = _log_loss_terms(float(p), yk)
                    g = -yk / ope
                    prod[k] *= ope
                    loss_sum[k] -= mz
                else:
                    lval, g = _loss_grad(loss_id, float(p), yk, eps)
                    if compute_loss:
                        loss_sum[k] += lval
                if clip:
                    g = min(max(g, -1e12), 1e12)
                if weighted:
                    g *= _row_weight(v, k, swv, cwt, has_cw, has_sw)
                gsum[k] += g
                gk = grad[k]
                for f in range(d):
                    gk[f] += g * x[f]
            if log_prod:
                n_prod += 1
                if n_prod == _LOG_SPAN:
                    for k in range(K):
                        loss_sum[k] += math.log(prod[k])
                        prod[k] = 1.0
                    n_prod = 0
        for k in range(K):
            eta = base[bi] * scale[k]
            w = coef[k]
            if has_l2:
                shrink = max(1.0 - (1.0 - l1) * alpha * eta, 0.0) ** m
                for f in range(d):
                    w[f] *= shrink
            gk = grad[k]
            for f in range(d):
                w[f] -= eta * gk[f]
            if fit_intercept:
                intercept[k] -= gsum[k] * (intercept_decay * eta)
            if has_l1:
                u[k] += (l1 * alpha * m) * (eta * active[k])
                qk = q[k]
                for f in range(d):
                    c = w[f]
                    if c > 0:
                        new = max(c - (u[k] + qk[f]), 0.0)
                    elif c < 0:
                        new = min(c + (u[k] - qk[f]), 0.0)
                    else:
                        new = c
                    w[f] = new
                    qk[f] += new - c
            if average and frac[bi] > 0:
                fr = frac[bi] * active[k]
                ak = avg[k]
                for f in range(d):
                    ak[f] += (w[f] - ak[f]) * fr
                avg_b[k] += (intercept[k] - avg_b[k]) * fr
    if log_prod:
        for k in range(K):
            loss_sum[k] += math.log(prod[k])


@_njit
def _expand_runs(starts, run, m, out):
    j = 0
    for s in starts:
        for p in range(max(s, 0), min(s + run, m)):
            out[j] = p
            j += 1
    return j


def expand_runs(starts, run, m, out=None):
    """The positions of the runs ``starts[i] .. starts[i] + run - 1`` in the given order, less
    those outside ``[0, m)``, as one int64 array (no temporaries of its size): a view of
    ``out`` when given (a 1-D int64 NumPy array of at least ``m`` elements), else a new one."""
    if _expand_runs is None:  # pragma: no cover - without Numba
        pos = (starts[:, None] + np.arange(run, dtype=starts.dtype)[None, :]).ravel()
        return pos[(pos >= 0) & (pos < m)].astype(np.int64)
    if out is None or out.dtype != np.int64 or out.ndim != 1 or out.shape[0] < m:
        out = np.empty(m, dtype=np.int64)
    n = _expand_runs(np.ascontiguousarray(starts, dtype=np.int64), int(run), int(m), out)
    return out[:n]


def usable(X, y, cfg, jit=None):
    """Whether the compiled kernel applies to the partition ``(X, y)`` under ``cfg``.

    ``jit``: the ``jit`` setting as the client read it (``None`` reads it here).

    Only for one output (binary classification, regression): with several, the reference's
    matrix products and NumPy's vectorised ``exp``/``log`` over the batch's ``(rows, classes)``
    scores beat a compiled loop calling the scalar ones for every row and class (measured 2x
    slower for 10 classes).
    """
    return (
        cfg.n_outputs == 1
        and type(X) is np.ndarray
        and type(y) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and X.flags.c_contiguous
        and X.flags.aligned  # an unaligned block would be one more type to compile for
        and bool(_config.get("jit") if jit is None else jit)
        and _sgd is not None
    )


def _schedule(n_rows, batch_size, t, cfg, clock_step, curvature, mean_weight):
    """Per-batch base learning rate and averaging fraction, and the clock after the last
    batch: the reference's per-batch scalars, computed ahead.

    Without averaging, and for the rates that are sums, products and quotients of the clock
    ("optimal", "constant", "adaptive"), as array operations that give the loop's bits (the
    clock is accumulated left to right like the loop's ``t += step``): the loop cost 0.5 ms
    per 250 batches, a fortieth of a round's kernel.
    """
    n_batches = -(-n_rows // batch_size)
    if not cfg.average and cfg.learning_rate in ("optimal", "constant", "adaptive"):
        last = n_rows - (n_batches - 1) * batch_size
        steps = np.full(n_batches + 1, float(batch_size if clock_step is None else clock_step))
        steps[0] = t
        if clock_step is None:
            steps[-1] = last
        clock = np.add.accumulate(steps)
        if cfg.learning_rate == "optimal":
            rate = 1.0 / (cfg.alpha * (cfg.optimal_init + clock[:-1] - 1.0))
        else:
            rate = np.full(n_batches, kernels.base_learning_rate(cfg, t))
        caps = np.full(n_batches, kernels.rate_cap(batch_size, curvature, cfg, mean_weight))
        caps[-1] = kernels.rate_cap(last, curvature, cfg, mean_weight)
        return np.minimum(rate, caps), np.zeros(n_batches), float(clock[-1])
    base = np.empty(n_batches)
    frac = np.zeros(n_batches)
    caps = {}  # the cap depends only on the batch's size: every batch but the last share one
    for b in range(n_batches):
        m = min(batch_size, n_rows - b * batch_size)
        cap = caps.get(m)
        if cap is None:
            cap = caps[m] = kernels.rate_cap(m, curvature, cfg, mean_weight)
        base[b] = min(kernels.base_learning_rate(cfg, t), cap)
        step = m if clock_step is None else clock_step
        if cfg.average:
            done = max(0.0, t - cfg.average)
            new = max(0.0, t + step - max(t, cfg.average))
            if new > 0:
                frac[b] = new / (done + new)
        t += step
    return base, frac, t


def local_sgd(X, y, sample_weight, model, rows, *, batch_size, t, lr_scale, cfg,
              class_weight=None, clock_step=None, curvature=None, check=None):
    """Compiled :func:`skdml.linear_model._sgd_kernels.local_sgd` (same inputs and output).

    ``check``: a callable ``check(X)`` that raises on NaN or infinity in ``X``. When given,
    the kernel watches every row's score as it computes it (a NaN or infinite value makes the
    score non-finite whatever the model, as long as the model is finite) and calls ``check``
    after the loop if one was not finite: the values are checked with no pass of their own.
    """
    import array_api_compat.numpy as npx

    coef = np.array(model["coef"], copy=True, order="C")
    intercept = np.array(model["intercept"], copy=True)
    dtype = coef.dtype
    n_out = coef.shape[0]
    empty = np.zeros((0, 0), dtype=dtype)
    avg = avg_b = q = u = None
    if cfg.average:
        avg = np.array(model["avg_coef"], copy=True, order="C")
        avg_b = np.array(model["avg_intercept"], copy=True)
    if cfg.has_l1:
        q = np.array(model["q"], copy=True, order="C")
        u = np.array(model["u"], copy=True)
    loss_sum = np.zeros(n_out)
    contiguous = isinstance(rows, slice)
    if contiguous:
        offset, n_rows = rows.start, rows.stop - rows.start
        order = np.zeros(0, dtype=np.int64)
    else:
        offset, n_rows = 0, int(rows.shape[0])
        order = np.ascontiguousarray(rows, dtype=np.int64)
    if n_rows == 0:
        return kernels._result(coef, intercept, avg, avg_b, q, u, loss_sum, t, cfg)
    # Targets and weights are read row by row in the compiled loop, from the partition's own
    # arrays: no per-round (rows, 1) copies, which cost more than their size suggests on a
    # Dask worker (its MALLOC_TRIM_THRESHOLD_ makes every array over 128 KiB fresh pages: about
    # 5 ms more per round of 250,000 rows, measured).
    classifier = bool(cfg.classifier)
    # one label type per task kind (class indices or numbers): each type is a compilation
    yy = np.ascontiguousarray(y, dtype=np.int64 if classifier else np.float64)
    # per class index: the targets and class weights of each output (the reference's rules,
    # applied to the classes instead of to every row)
    n_cls = max(2, n_out) if classifier else 0
    ytab = kernels.targets(np.arange(n_cls), cfg, xp=npx, dtype=np.float64) if classifier \
        else np.zeros((0, n_out))
    cwt = np.zeros((0, n_out), dtype=dtype)
    if class_weight is not None:
        cwt = np.ascontiguousarray(kernels._class_weights(
            np.arange(n_cls), class_weight, cfg, xp=npx, dtype=dtype), dtype=dtype)
    sw = np.zeros(0, dtype=dtype) if sample_weight is None else np.ascontiguousarray(
        sample_weight, dtype=dtype)
    weighted = class_weight is not None or sample_weight is not None
    mean_weight = 1.0
    if weighted and batch_size > kernels.FREE_ROWS:
        mean_weight = float(_mean_weight(order, offset, contiguous, n_rows, n_out, yy, cwt,
                                         sw))
    if curvature is None and batch_size > kernels.FREE_ROWS:
        curvature = kernels.data_curvature(X, cfg, xp=npx)
    base, frac, t_end = _schedule(n_rows, batch_size, t, cfg, clock_step, curvature,
                                  mean_weight)
    scale = np.asarray(lr_scale, dtype=np.float64)
    active = (scale > 0).astype(np.float64)
    bad = np.full(1, -1, dtype=np.int64)  # the first row whose score was not finite
    _sgd(X, order, offset, contiguous, n_rows, yy, classifier, np.ascontiguousarray(ytab),
         cwt, sw, coef, intercept,
         empty if avg is None else avg, intercept[:0] if avg_b is None else avg_b,
         empty if q is None else q, intercept[:0] if u is None else u,
         base, frac, int(batch_size), scale, active, _LOSS_IDS[cfg.loss], float(cfg.epsilon),
         cfg.loss in kernels._UNBOUNDED, float(cfg.alpha), float(cfg.l1), cfg.has_l2,
         cfg.has_l1, cfg.penalty is not None, bool(cfg.fit_intercept),
         float(cfg.intercept_decay), bool(cfg.average), bool(cfg.compute_loss), loss_sum,
         _AHEAD, check is not None, bad)
    if bad[0] >= 0:
        check(X)  # raises for bad values; a model that overflowed is the driver's to report
    return kernels._result(coef, intercept, avg, avg_b, q, u, loss_sum, t_end, cfg)
