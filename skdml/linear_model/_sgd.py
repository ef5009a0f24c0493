"""SGDClassifier and SGDRegressor: data-parallel mini-batch SGD with allreduce model averaging.

Shells (parameters, validation, fitted attributes) and the driver (``_SGDRun``) that runs the
worker-resident rounds. The per-partition math lives in :mod:`._sgd_kernels`.

One fit:

1. ``X``, the encoded targets and the sample weights are persisted on the workers once
   (``persist_partitions``, after a copy of any chunk whose memory is not aligned); per
   partition a fixed validation split (``early_stopping``).
2. Each epoch, every partition visits its training rows in an order drawn from
   ``SeedSequence([seed, 0, epoch, partition])`` (in the round task when the epoch is one
   round, else in one ``skdml-sgd-shuffle`` task per partition and epoch): all rows shuffled,
   or with ``shuffle="batches"`` runs of consecutive rows in a random order.
3. Each round, ``skdml-sgd-local`` runs ``sync_every`` mini-batches on every partition from the
   shared model and returns the models weighted by the rows each partition saw, pre-summed per
   task as double-double numbers (so the rounding does not depend on the grouping);
   ``skdml-sgd-allreduce`` sums them so that every worker holds the average, which the next
   round reads where it is. An epoch's rounds are submitted a window at a time, and the next
   epochs before the client reads the finished one.
4. At the end of each epoch the client fetches the model (a few KB to MB), which gives the
   loss for the convergence check and the state a failed epoch is redone from (``run_step``).
"""
from __future__ import annotations

import math
import time
import warnings
from collections import deque
from functools import partial
from numbers import Integral, Real

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .. import _config
from .._backend import asarray_like, get_namespace, is_dask_array, to_host
from .._progress import LoopProgress
from .._validation import (
    Interval,
    StrOptions,
    _check_block_finite,
    adapt_sample_weight,
    adapt_X,
    adapt_y,
    check_n_features,
    validate_params,
)
from ..parallel import (
    CLUSTER_ERRORS,
    Partitions,
    ResidentLoopAborted,
    aggregate,
    allreduce,
    broadcast,
    get_executor,
    map_partitions,
    persist_partitions,
    run_resident,
    run_step,
)
from ..parallel._executor import new_name
from ..parallel._partitions import aligned_block
from . import _sgd_fused as fused
from . import _sgd_kernels as kernels

__all__ = ["SGDClassifier", "SGDRegressor"]

#: Intercept updates are damped by this factor for sparse input, like scikit-learn's
#: ``SPARSE_INTERCEPT_DECAY``: the intercept sees every sample, each weight only a few.
SPARSE_INTERCEPT_DECAY = 0.01

#: ``batch_size="auto"``: aim for at least this many mini-batches per partition and epoch ...
_AUTO_MIN_BATCHES = 256
#: ... with batches of at most this many rows (larger ones stop paying for themselves: the
#: per-batch overhead is already small next to the data; measured in benchmarks/RESULTS.md) ...
_AUTO_MAX_BATCH = 1024
#: ... and per-batch (rows x outputs) temporaries of at most this many bytes: Dask's Nanny
#: sets MALLOC_TRIM_THRESHOLD_=65536, so larger temporaries are page-faulted in every batch.
_AUTO_MAX_TEMP_BYTES = 65536

#: Rounds submitted ahead of the one the client waits for.
_WINDOW = 8
#: Epochs submitted ahead of the one the client reads, when an epoch fits in the window.
_DEPTH = 3


# ----------------------------------------------------------------------------------------------
# Tasks (module level so that they pickle by reference)
# ----------------------------------------------------------------------------------------------
#: Suffix of the low part of a double-double leaf.
_LO = "__lo"


def _two_sum(a, b):
    """``a + b`` as ``(s, e)`` with ``s + e`` exact (Knuth's TwoSum; no multiplication, so no
    fused multiply-add can change it)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _add_states(a, b):
    """Sum of two state dicts; leaves with a ``__lo`` partner are double-double numbers.

    Exactly commutative and associative to about 2**-106 relative, so the rounded sum of the
    partitions' models does not depend on how the scheduler grouped them (which depends on where
    the data landed): the fit is reproducible for a given ``random_state`` and partitioning,
    whatever the placement. Plain leaves (row counts, validation sums) are added as they are.
    """
    out = {}
    for k in a:
        if k.endswith(_LO):
            continue
        if k + _LO in a:
            s, e = _two_sum(a[k], b[k])
            e = e + (a[k + _LO] + b[k + _LO])
            hi = s + e
            out[k] = hi
            out[k + _LO] = e - (hi - s)
        else:
            out[k] = a[k] + b[k]
    return out


def _pack(values, n, xp):
    """A state dict from the row-weighted model (and objective) ``values``: double-double leaves
    plus the row count ``n``."""
    state = {}
    for k, v in values.items():
        state[k] = v
        state[k + _LO] = xp.zeros_like(v)
    state["n"] = xp.asarray([float(n)], dtype=xp.float64)
    return state


def _value(state, key):
    """The value of a double-double leaf (rounded once)."""
    return state[key] + state[key + _LO]


def _split_rows(n, n_val, seed, partition):
    """Validation rows (sorted) and training rows (ascending) of a partition of ``n`` rows.

    The validation rows are fixed for a fit: drawn from ``SeedSequence([seed, 1, partition])``.
    """
    if n_val <= 0:
        return np.empty(0, dtype=np.int64), np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, 1, partition])
    val = np.sort(rng.permutation(n)[:n_val])
    keep = np.ones(n, dtype=bool)
    keep[val] = False
    return val, np.flatnonzero(keep)


def _index_array(rows, X):
    """Row indices as an integer array of the namespace of ``X`` (host for sparse blocks)."""
    xp = get_namespace(X)
    return xp.asarray(rows) if xp.__name__.endswith("numpy") else asarray_like(rows, X)


#: ``shuffle="batches"``: each mini-batch is made of about this many runs of consecutive rows.
#: Fewer, longer runs read faster (every jump to a random place of a large partition costs
#: about a microsecond here, whatever is prefetched); more runs mix a batch better. Measured
#: on the 1,000,000 x 100 benchmark (two workers, 4 x 3 fits each, interleaved): 5-epoch fit
#: 0.289 s with 16 runs of 64 rows, 0.270 s with 8 runs of 128, 0.272 s with 4 of 256, test
#: accuracy 0.8734-0.8735 for all; the sorted-rows test passes with 8.
RUNS_PER_BATCH = 8


def _batch_order(m, batch, rng, out=None):
    """Positions ``0 .. m-1`` cut into runs of ``max(1, batch // RUNS_PER_BATCH)`` consecutive
    positions, on a grid shifted by a random offset, the runs in a random order: every
    mini-batch then gathers about :data:`RUNS_PER_BATCH` runs from random places of the
    partition, each read at the memory's bandwidth rather than its latency. ``out``: an int64
    buffer of at least ``m`` positions to write them into (see ``_sgd_fused.expand_runs``)."""
    if m == 0:
        return np.empty(0, dtype=np.int64)
    run = max(1, int(batch) // RUNS_PER_BATCH)
    itype = np.int32 if m + 2 * run < 2**31 else np.int64  # (int32: 10x faster here)
    starts = np.arange(int(rng.integers(run)) - run, m, run, dtype=itype)
    starts = starts[rng.permutation(starts.shape[0])]
    return fused.expand_runs(starts, run, m, out=out)


def _order_task(X, y, w, *, partition, seed, epoch, n_val, shuffle, batch=None, out=None):
    """The training rows of a partition in this epoch's order (seeded by epoch and partition).

    ``shuffle``: True, every row in a fresh random order; ``"batches"``, runs of consecutive
    rows in a fresh random order (:func:`_batch_order`, with the partition's mini-batch size
    ``batch[partition]``); False, the stored order.

    Built with one array of the order's size (this runs every epoch, and on a Dask worker each
    array of over 128 KiB is fresh memory, see ``_sgd_fused.local_sgd``); ``out``, an int64
    NumPy buffer of the partition's length, holds a ``"batches"`` order of every row instead
    (the resident loop keeps one per partition: page-faulting a fresh 2 MB order cost 0.8 of
    its 0.9 ms, measured).
    """
    n = X.shape[0]
    train = None  # None: every row trains (positions are rows)
    if n_val[partition] > 0:
        _, train = _split_rows(n, n_val[partition], seed, partition)
    m = n if train is None else train.shape[0]
    if shuffle:
        rng = np.random.default_rng([seed, 0, epoch, partition])
        if shuffle == "batches":
            order = _batch_order(m, max(1, int(batch[partition])), rng,
                                 out=out if train is None else None)
        else:
            order = rng.permutation(m)
        if train is not None:
            order = train[order]
    else:
        order = np.arange(n, dtype=np.int64) if train is None else train
    return _index_array(order, X)


def _normalized(state, cfg):
    """The model of a state dict of row-weighted sums (divided by the rows they weigh)."""
    n = float(state["n"][0])
    return {k: _value(state, k) / n for k in kernels.model_keys(cfg)}


def _finite_check(starts, partition, X):
    """``check(X)`` raising ``ValueError`` on NaN or infinity in partition ``partition``
    (whose first row is row ``starts[partition]`` of the data), for the message."""
    start = int(starts[partition])
    info = {0: {"array-location": [(start, start + int(X.shape[0]))],
                "chunk-location": (partition,)}}
    return partial(_check_block_finite, input_name="X", block_info=info)


def _round_task(X, y, w, order, state, *, partition, spans, batch, t, lr_scale, cfg,
                class_weight, reset_loss, shuffle=None, natural=False, clock_step=None,
                jit=True, check=None, curvature=None):
    """One round on one partition: local mini-batches from the shared model, weighted by rows.

    ``order`` is the epoch's row order (from ``_order_task``), or None when the epoch is this
    one round: the order is then drawn here from ``shuffle`` (the ``_order_task`` arguments).
    ``natural``: every row in its stored order (no shuffle, nothing held out), so the
    mini-batches are contiguous slices of the partition, used without copying.
    Partition 0 also carries the objective summed so far in the epoch (so that only the final
    state of an epoch needs to be read).
    ``check``: the first row of every partition, when the data's values are still to be checked
    for NaN and infinity (the first epoch of a fit on Dask input): the compiled kernel watches
    the scores of the rows it visits, the array-API one checks the partition before its first
    round.
    ``curvature``: the partition's ``data_curvature`` when the caller has it (computed here
    otherwise).
    """
    xp = get_namespace(X)
    lo, hi = spans[partition]
    if natural:
        rows = slice(lo, hi)
    else:
        if order is None:
            order = _order_task(X, y, w, partition=partition, **shuffle)
        rows = order[lo:hi]
    model = _normalized(state, cfg)
    checker = None if check is None else _finite_check(check, partition, X)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if fused.usable(X, y, cfg, jit):
            out = fused.local_sgd(X, y, w, model, rows, batch_size=batch[partition], t=t,
                                  lr_scale=lr_scale, cfg=cfg, class_weight=class_weight,
                                  clock_step=clock_step, check=checker, curvature=curvature)
        else:
            if checker is not None and lo == 0:
                checker(X)
            out = kernels.local_sgd(X, y, w, model, rows, batch_size=batch[partition],
                                    t=t, lr_scale=lr_scale, cfg=cfg, class_weight=class_weight,
                                    clock_step=clock_step, curvature=curvature, xp=xp)
    n = float(hi - lo)
    res = _pack({**{k: out[k] * n for k in model}, "loss": out["loss"]}, n, xp)
    if partition == 0 and not reset_loss:
        lo = "loss" + _LO
        summed = _add_states({"loss": res["loss"], lo: res[lo]},
                             {"loss": state["loss"], lo: state[lo]})
        res["loss"], res[lo] = summed["loss"], summed[lo]
    return res


def _one_round_task(X, y, w, state, **kwargs):
    """``_round_task`` for an epoch of one round (the order is drawn in the task)."""
    return _round_task(X, y, w, None, state, **kwargs)


def _validate_task(X, y, w, state, *, partition, seed, n_val, cfg):
    """Validation sums of the (standard, not averaged) model on a partition's held-out rows."""
    xp = get_namespace(X)
    val, _ = _split_rows(X.shape[0], n_val[partition], seed, partition)
    model = _normalized(state, cfg)
    with np.errstate(over="ignore", invalid="ignore"):
        return kernels.validation_stats(X, y, w, model["coef"], model["intercept"],
                                        _index_array(val, X), cfg, xp=xp)


def _aligned(arr):
    """A Dask array whose chunks are aligned on the worker that holds them (persisted so,
    every later task reads them without a copy; see ``skdml.parallel._partitions.aligned_block``).

    Its name is new in every call: the name of an array does not say how it is computed (a
    persisted array keeps its lazy original's name), so a name derived from it could meet a
    key of an earlier fit, still on the cluster, that was computed another way (distributed
    warns of failures and deadlocks when a key changes its task).
    """
    if arr is None:
        return None
    return arr.map_blocks(aligned_block, dtype=arr.dtype, meta=arr._meta,
                          name=new_name("sgd-align"))


def _persist(X, y, w, **summary):
    """``persist_partitions`` of the aligned arrays (``summary``: its summary arguments)."""
    return persist_partitions(_aligned(X), _aligned(y), _aligned(w), **summary)


#: Integer labels spanning fewer values than this are counted and encoded through a table of
#: the span (O(n)) instead of by sorting and binary search (O(n log n)), with fewer temporaries:
#: per 250,000 binary labels, counting 0.4 against 1.2-2.4 ms and encoding 0.3 against 1.8-3.4
#: ms (measured), costs that every fit pays before its first epoch.
_TABLE_SPAN = 1 << 16


def _small_int_span(y):
    """``(lo, hi)`` of integer labels ``y`` spanning fewer than :data:`_TABLE_SPAN` values, else
    None (labels of other types, or too spread out, take the sorting path)."""
    if y.dtype.kind not in "iu" or y.size == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    return (lo, hi) if hi - lo < _TABLE_SPAN and -2**62 < lo and hi < 2**62 else None


def _span_offsets(y, lo):
    """``y - lo`` as platform integers (computed in ``y``'s own type it could wrap around)."""
    idx = y.astype(np.intp, copy=False)
    return idx if lo == 0 else idx - lo


def _unique_task(X, y, w):
    """Sorted labels of a partition and their counts (on the host)."""
    y = to_host(y)
    span = _small_int_span(y)
    if span is None:
        values, counts = np.unique(y, return_counts=True)
        return values, counts
    lo, hi = span
    table = np.bincount(_span_offsets(y, lo), minlength=hi - lo + 1)
    present = np.flatnonzero(table)
    return (present + lo).astype(y.dtype), table[present].astype(np.intp)


def _merge_counts(a, b):
    values = np.concatenate([a[0], b[0]])
    counts = np.concatenate([a[1], b[1]])
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, np.bincount(inverse.ravel(), weights=counts, minlength=len(uniq)).astype(np.int64)


def _labels_are_indices(classes):
    """Whether the (sorted, distinct) classes are the integers ``0 .. n-1``: labels are then
    their own class indices."""
    classes = np.asarray(classes)
    return classes.dtype.kind in "iu" and classes.size > 0 and classes[0] == 0 and \
        classes[-1] == classes.size - 1


def _encode_labels(y, classes):
    """Class indices of the labels ``y`` (host arrays); unknown labels raise ``ValueError``."""
    y = to_host(y)
    span = _small_int_span(y) if classes.dtype.kind in "iu" else None
    if span is not None and span[0] >= 0 and span[1] < len(classes) and \
            _labels_are_indices(classes):
        # classes 0 .. n-1 (sorted, distinct: so every value between) and labels among them:
        # the labels are their own indices (no copy for int64 labels, the common case)
        return y.astype(np.int64, copy=False)
    if span is not None:
        lo, hi = span
        table = np.full(hi - lo + 1, -1, dtype=np.int64)
        inside = np.flatnonzero((classes >= lo) & (classes <= hi))
        table[(classes[inside] - lo).astype(np.intp)] = inside
        idx = table.take(_span_offsets(y, lo))
        bad = idx < 0
    else:
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, len(classes) - 1)
        bad = classes[idx] != y
    if np.any(bad):
        unknown = np.unique(y[bad])[:5].tolist()
        raise ValueError(
            f"y contains labels {unknown} that are not among the classes {classes.tolist()}; "
            "pass every label that can occur in classes= on the first call to partial_fit."
        )
    return idx.astype(np.int64, copy=False)


def _encode_block(y, classes):
    return _encode_labels(y, classes)


def _encode_task(X, y, w, summary):
    """Class indices of a partition's labels; ``summary``: the ``(classes, counts)`` of every
    partition's ``_unique_task``."""
    return _index_array(_encode_labels(y, summary[0]), X)


# ----------------------------------------------------------------------------------------------
# Prediction blocks (map_blocks; no Dask inside)
# ----------------------------------------------------------------------------------------------
def _scores(X, coef, intercept):
    xp = get_namespace(X)
    return kernels.decision(X, coef, intercept, xp=xp)


def _decision_block(X, coef, intercept, ravel):
    s = _scores(X, coef, intercept)
    return s[:, 0] if ravel else s


def _predict_block(X, coef, intercept, classes):
    s = _scores(X, coef, intercept)
    xp = get_namespace(s)
    idx = xp.astype(s[:, 0] > 0, xp.int64) if s.shape[1] == 1 else xp.argmax(s, axis=1)
    if classes.dtype.kind in "biuf" and not isinstance(idx, np.ndarray):
        return xp.take(asarray_like(classes, idx), idx, axis=0)
    return classes[to_host(idx)]


def _expit(s, xp):
    e = xp.exp(-xp.abs(s))
    return xp.where(s >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _proba_block(X, coef, intercept, loss, log=False):
    s = _scores(X, coef, intercept)
    xp = get_namespace(s)
    if loss == "log_loss":
        p = _expit(s, xp)
    else:  # modified_huber
        p = (xp.clip(s, -1.0, 1.0) + 1.0) / 2.0
    if p.shape[1] == 1:
        p = xp.concat([1.0 - p, p], axis=1)
    else:
        total = xp.sum(p, axis=1)
        zero = total == 0
        p = xp.where(zero[:, None], xp.ones_like(p), p)
        total = xp.where(zero, float(p.shape[1]), total)
        p = p / total[:, None]
    if log:
        with np.errstate(divide="ignore"):
            return xp.log(p)
    return p


# ----------------------------------------------------------------------------------------------
# The schedule of one fit call (client side)
# ----------------------------------------------------------------------------------------------
class _Plan:
    """Which rows each partition visits in each round of an epoch.

    Every partition splits its training rows into the same number of mini-batches (sized in
    proportion to the partition), so all take part in every round; a round is ``sync_every``
    mini-batches. The sample clock of the shared model advances each round by the row-weighted
    mean of the rows the partitions saw; within the round every replica's clock moves by the
    same step per mini-batch, so replicas of different sizes learn at the same rate.
    """

    def __init__(self, train_rows, batch_size, sync_every, n_outputs=1, itemsize=8):
        self.train = [int(m) for m in train_rows]
        m_max = max(self.train)
        if batch_size == "auto":
            cap = min(_AUTO_MAX_BATCH, max(1, _AUTO_MAX_TEMP_BYTES // (n_outputs * itemsize)))
            batch_size = min(cap, max(1, math.ceil(m_max / _AUTO_MIN_BATCHES)))
        self.batch_size = int(batch_size)
        self.n_batches = max(1, math.ceil(m_max / self.batch_size))
        self.batch = [max(1, math.ceil(m / self.n_batches)) for m in self.train]
        per_round = self.n_batches if sync_every == "epoch" else min(int(sync_every),
                                                                     self.n_batches)
        self.per_round = per_round
        self.n_rounds = math.ceil(self.n_batches / per_round)

    def spans(self, r):
        """``[(lo, hi)]`` per partition: the slice of its epoch order visited in round ``r``."""
        out = []
        for m, b in zip(self.train, self.batch):
            step = self.per_round * b
            out.append((min(m, r * step), min(m, (r + 1) * step)))
        return out

    def advance(self, r):
        """How far round ``r`` moves the shared sample clock."""
        sizes = [hi - lo for lo, hi in self.spans(r)]
        total = sum(sizes)
        return sum(s * s for s in sizes) / total if total else 0.0

    def clock_step(self, r):
        """How far the clock moves per mini-batch in round ``r``, the same for every partition
        (replicas of different sizes then learn at the same rate): the round's advance over its
        number of mini-batches."""
        n_steps = max(math.ceil((hi - lo) / b) for (lo, hi), b in zip(self.spans(r), self.batch))
        return self.advance(r) / n_steps if n_steps else 0.0

    @property
    def epoch_advance(self):
        return sum(self.advance(r) for r in range(self.n_rounds))


def _validation_counts(lengths, fraction):
    """Validation rows per partition: ``ceil(fraction * n)`` in all (like ShuffleSplit), spread
    over the partitions in proportion to their sizes (largest remainders first)."""
    total = math.ceil(fraction * sum(lengths))
    exact = [fraction * n for n in lengths]
    counts = [min(n, math.floor(e)) for n, e in zip(lengths, exact)]
    order = sorted(range(len(lengths)), key=lambda i: (counts[i] - exact[i], i))
    k = 0
    while sum(counts) < total and k < 2 * len(order):
        i = order[k % len(order)]
        if counts[i] < lengths[i]:
            counts[i] += 1
        k += 1
    return counts


def _is_finite(model):
    """Whether a normalized model's coefficients and intercepts are all finite (a fit that
    overflowed is reported after the epoch, as scikit-learn does)."""
    return bool(np.all(np.isfinite(model["coef"])) and np.all(np.isfinite(model["intercept"])))


def _stopping_rule(track, score, *, tol, n_iter_no_change, adaptive, eta0, better_is_higher):
    """scikit-learn's stopping rule after an epoch, per output: ``n_iter_no_change`` epochs
    without an improvement of ``tol`` stop an output (its rate frozen at 0), or, with the
    adaptive rate, divide its rate by 5 while ``eta0`` times it is above 1e-6. Updates
    ``track`` (best, count, stopped, scale) in place; returns (all stopped, rate scales)."""
    n_outputs = track["count"].shape[0]
    best = track["best"]
    if best is None:
        best = np.full(n_outputs, -np.inf if better_is_higher else np.inf)
    if better_is_higher:
        worse = score < best + tol
        best = np.maximum(best, score)
    else:
        worse = score > best - tol
        best = np.minimum(best, score)
    track["best"] = best
    active = ~track["stopped"]
    track["count"] = np.where(worse & active, track["count"] + 1, 0)
    hit = active & (track["count"] >= n_iter_no_change)
    scale = track["scale"].copy()
    for k in np.flatnonzero(hit):
        if adaptive and eta0 * scale[k] > 1e-6:
            scale[k] /= 5.0
            track["count"][k] = 0
        else:
            track["stopped"][k] = True
            scale[k] = 0.0  # freeze this output, as scikit-learn stops its binary fit
    track["scale"] = scale
    return bool(np.all(track["stopped"])), scale


def _resident_sgd(blocks, comm, *, state, first_epoch, max_epochs, t0, lr_scale, plan, cfg,
                  class_weight, seed, shuffle, n_val, natural, check, check_epoch, jit, n_train,
                  rule):
    """The epochs of a fit on one member of a resident loop
    (:func:`skdml.parallel.run_resident`): every round, the member's partitions run
    ``_round_task`` from the shared state, as the round-by-round driver's tasks do, and
    ``comm.allreduce`` sums their states across the members (the double-double sums of
    :func:`_add_states`, so to the bits of the driver's). After each epoch every member takes
    the driver's decisions from the same numbers: a model that is not finite ends the loop
    (the client raises), and with ``rule`` (``tol`` set) :func:`_stopping_rule` stops it or
    changes the outputs' rates. Returns (state, epochs run, whether the model is finite)."""
    like = blocks[0][0]
    state = {k: asarray_like(v, like) for k, v in state.items()}
    track = {"best": None, "count": np.zeros(len(lr_scale), dtype=int),
             "stopped": np.zeros(len(lr_scale), dtype=bool),
             "scale": np.asarray(lr_scale, dtype=float)}
    lr = tuple(float(v) for v in lr_scale)
    # each partition's data curvature, computed once for all its rounds (a task of the
    # round-by-round driver computes it every round: 0.7 ms of a 20 ms round here)
    curvature = {i: kernels.data_curvature(X, cfg, xp=get_namespace(X))
                 if plan.batch[i] > kernels.FREE_ROWS else None
                 for i, (X, _, _) in zip(comm.partitions, blocks)}
    # and a buffer for its "batches" orders, reused every epoch
    buffers = {i: np.empty(X.shape[0], dtype=np.int64)
               for i, (X, _, _) in zip(comm.partitions, blocks)
               if shuffle == "batches" and isinstance(X, np.ndarray)}
    done = 0
    while done < max_epochs:
        epoch = first_epoch + done
        order_kw = dict(seed=seed, epoch=epoch, n_val=n_val, shuffle=shuffle, batch=plan.batch)
        orders = {}
        t = t0
        for r in range(plan.n_rounds):
            static = dict(spans=plan.spans(r), batch=plan.batch, t=t, lr_scale=lr, cfg=cfg,
                          class_weight=class_weight, reset_loss=r == 0, natural=natural,
                          clock_step=plan.clock_step(r), jit=jit,
                          check=check if epoch == check_epoch else None)
            local = None
            for i, (X, y, w) in zip(comm.partitions, blocks):
                if not natural and i not in orders:  # the epoch's order, drawn once
                    orders[i] = _order_task(X, y, w, partition=i, out=buffers.get(i),
                                            **order_kw)
                out = _round_task(X, y, w, orders.get(i), state, partition=i,
                                  curvature=curvature[i], **static)
                local = out if local is None else _add_states(local, out)
            state = comm.allreduce(local, _add_states)
            t += plan.advance(r)
        done += 1
        if not _is_finite(_normalized(to_host(state), cfg)):
            return state, done, False
        if rule is not None:
            score = to_host(_value(state, "loss")) / max(n_train, 1)
            stop, scale = _stopping_rule(track, score, better_is_higher=False, **rule)
            if stop:
                break
            lr = tuple(float(v) for v in scale)
        t0 += plan.epoch_advance
    return state, done, True


# ----------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------
class _Epoch:
    """The rounds of one epoch, submitted a window at a time."""

    def __init__(self, run, epoch, start, t0, lr_scale):
        self.run = run
        self.epoch = epoch
        # the first row of each partition while the values are still to be checked
        self.check = run.row_starts if epoch == run.check_epoch else None
        self.t0 = t0
        self.lr_scale = tuple(float(v) for v in lr_scale)
        self.restart_state = None  # client-side state to redo the epoch from
        self.redone = False
        self._reset(start)

    def _reset(self, start):
        self.start = start
        self.r = 0
        self.t = self.t0
        self.cur = start
        self.inflight = []
        self.handles = []
        self.eparts = None
        self.val = None

    def pump(self, block):
        """Submit rounds; with ``block=False`` stop when the window is full. True when all are."""
        run = self.run
        ex, plan = run.ex, run.plan
        natural = not run.shuffle and not any(run.n_val)
        one_round = plan.n_rounds == 1 or natural
        shuffle = dict(seed=run.seed, epoch=self.epoch, n_val=run.n_val, shuffle=run.shuffle,
                       batch=plan.batch)
        if self.eparts is None and one_round:
            self.eparts = run.parts
        elif self.eparts is None:
            order = map_partitions(
                partial(_order_task, **shuffle),
                run.parts, group_by="partition", with_index=True, speculative=False,
                name="sgd-shuffle")
            self.handles.extend(order)
            p = run.parts
            self.eparts = Partitions(blocks=[b + (o,) for b, o in zip(p.blocks, order)],
                                     workers=p.workers, lengths=p.lengths, nthreads=p.nthreads,
                                     arrays=p.arrays)
        while self.r < plan.n_rounds:
            if ex.distributed and len(self.inflight) >= _WINDOW:
                if not block:
                    return False
                ex.wait(self.inflight.pop(0))
            # static arguments bound in a partial: Dask does not traverse it (it would unpack
            # the config dataclass and the lists on every submit)
            task = partial(_one_round_task if one_round else _round_task,
                           spans=plan.spans(self.r), batch=plan.batch, t=self.t,
                           lr_scale=self.lr_scale, cfg=run.cfg, class_weight=run.class_weight,
                           reset_loss=self.r == 0, shuffle=shuffle if one_round else None,
                           natural=natural, clock_step=plan.clock_step(self.r),
                           jit=bool(_config.get("jit")), check=self.check)
            out = map_partitions(task, self.eparts, self.cur, combine=_add_states,
                                 with_index=True, speculative=False, name="sgd-local")
            self.cur = allreduce(out, op=_add_states, name="sgd-allreduce", nbytes=run.nbytes)
            self.handles.extend(out)
            self.handles.extend(self.cur.held())
            self.inflight.append(list(out))  # the round's local results
            self.t += plan.advance(self.r)
            self.r += 1
        if run.early_stopping and self.val is None:
            self.val = map_partitions(
                partial(_validate_task, seed=run.seed, n_val=run.n_val, cfg=run.cfg),
                run.parts, self.cur, combine=_add_states, with_index=True, speculative=False,
                name="sgd-validate")
            self.handles.extend(self.val)
        return True

    def result(self):
        """(state, validation sums or None), on the client."""
        self.pump(block=True)
        # the epoch's model: its partials folded on the client, to the bits the workers'
        # next round folds them to (no fold task, no task hop)
        state = self.cur.result()
        val = aggregate(self.val, _add_states, name="sgd-validate-sum") \
            if self.val is not None else None
        return dict(state), val

    def finish(self):
        """``result()``, redoing the epoch from the last client-side state on a cluster error."""
        try:
            return self.result()
        except CLUSTER_ERRORS:
            self.cancel()
            self.redone = True
            self._reset(self.run.initial_model(self.restart_state))
            raise

    def cancel(self):
        """Drop the epoch: release every reference, so the scheduler forgets its queued tasks.

        Not ``Client.cancel``: cancelling a future whose dependents include tasks that no client
        holds (the inner nodes of an allreduce) trips an assertion in distributed's
        ``Scheduler.stimulus_cancel`` (2026.8) and drops the client's connection.
        """
        self.handles = []
        self.inflight = []
        self.cur = self.start = None
        self.eparts = None
        self.val = None


#: A starting model of at most this many bytes goes to the first round's tasks inside the
#: tasks themselves; a larger one is first copied to each worker (``broadcast``), which costs
#: the first round a task hop (5-8 ms in the task stream of a fit).
_LITERAL_MODEL_BYTES = 64 * 1024


class _SGDRun:
    """Runs epochs of worker-resident rounds over persisted partitions."""

    def __init__(self, parts, plan, cfg, *, class_weight, seed, shuffle, n_val, early_stopping,
                 like, check_values=False):
        self.parts = parts
        self.plan = plan
        self.cfg = cfg
        self.class_weight = class_weight
        self.seed = seed
        self.shuffle = shuffle
        self.n_val = list(n_val)
        self.early_stopping = early_stopping
        self.like = like  # a Dask array whose backend the model lives on
        self.ex = get_executor()
        self.nbytes = None
        # the first epoch checks the values for NaN and infinity (check_values: not done yet)
        self.check_values = bool(check_values)
        self.check_epoch = None
        self.row_starts = tuple(int(v) for v in np.cumsum([0] + list(parts.lengths[:-1])))

    def to_device(self, state):
        return {k: asarray_like(v, self.like) for k, v in state.items()}

    def initial_model(self, state):
        """The client-side ``state`` as the first round's tasks take it: the state itself when
        small (it travels inside the tasks), else a copy on every worker."""
        model = self.to_device(state)
        if self.nbytes is None or self.nbytes > _LITERAL_MODEL_BYTES:
            model = broadcast(model, self.parts, name="sgd-model")
        return model

    def start(self, state, epoch, t0, lr_scale):
        job = _Epoch(self, epoch, self.initial_model(state), t0, lr_scale)
        job.restart_state = state
        return job

    def run_resident(self, state, *, first_epoch, max_epochs, t0, lr_scale, n_train, rule):
        """Every epoch as one worker-resident loop (:func:`_resident_sgd`), from the
        client-side ``state``; (state, epochs run, whether the model is finite). Raises
        ResidentLoopAborted when a member dies or stops answering."""
        if self.check_values:
            self.check_epoch = first_epoch
        natural = not self.shuffle and not any(self.n_val)
        out = run_resident(
            self.parts, _resident_sgd, name="sgd-local",
            state={k: to_host(v) for k, v in state.items()}, first_epoch=first_epoch,
            max_epochs=max_epochs, t0=t0, lr_scale=tuple(float(v) for v in lr_scale),
            plan=self.plan, cfg=self.cfg, class_weight=self.class_weight, seed=self.seed,
            shuffle=self.shuffle, n_val=self.n_val, natural=natural, check=self.row_starts,
            check_epoch=self.check_epoch, jit=bool(_config.get("jit")), n_train=n_train,
            rule=rule)
        return out[0]

    def run(self, state, *, first_epoch, max_epochs, t0, lr_scale, on_epoch):
        """Run up to ``max_epochs`` epochs from the client-side ``state``.

        ``on_epoch(epoch_index, state, val) -> (stop, lr_scale)`` decides after each epoch.
        Returns the last state and the number of epochs run.
        """
        self.nbytes = int(sum(v.size * v.dtype.itemsize for v in state.values()))
        if self.check_values:
            self.check_epoch = first_epoch
        ex = self.ex
        lr_scale = tuple(lr_scale)
        job = self.start(state, first_epoch, t0, lr_scale)
        # Epochs submitted ahead of the one being read: several when an epoch fits in the
        # window (small data: the client's round trips would otherwise leave the workers
        # idle), one otherwise. Stopping early wastes at most the round already running:
        # released tasks that have not started are dropped by the scheduler.
        depth = _DEPTH if self.plan.n_rounds <= _WINDOW else 1
        ahead = deque()
        done = 0
        try:
            while True:
                while ex.distributed and len(ahead) < depth and \
                        done + 1 + len(ahead) < max_epochs:
                    last = ahead[-1] if ahead else job
                    last.pump(block=True)
                    nxt = _Epoch(self, last.epoch + 1, last.cur,
                                 last.t0 + self.plan.epoch_advance, lr_scale)
                    nxt.pump(block=False)
                    ahead.append(nxt)
                state, val = run_step(job.finish, name=f"SGD epoch {job.epoch + 1}")
                done += 1
                stop, new_scale = on_epoch(done, state, val)
                new_scale = tuple(float(v) for v in new_scale)
                if stop or done >= max_epochs:
                    break
                if job.redone or new_scale != lr_scale:
                    while ahead:
                        ahead.pop().cancel()
                lr_scale = new_scale
                t_next = job.t0 + self.plan.epoch_advance
                job.cancel()
                if ahead:
                    job = ahead.popleft()
                    job.restart_state = state
                else:
                    job = self.start(state, first_epoch + done, t_next, lr_scale)
        finally:
            job.cancel()
            while ahead:
                ahead.pop().cancel()
        return state, done


# ----------------------------------------------------------------------------------------------
# Estimators
# ----------------------------------------------------------------------------------------------
def _is_lazy(obj):
    return dask.is_dask_collection(obj) or dask.is_dask_collection(getattr(obj, "data", None))


def _column(yd, name):
    """1-D targets: a column vector is raveled with scikit-learn's warning; more columns raise."""
    if yd.ndim == 2:
        if yd.shape[1] != 1:
            raise ValueError(
                f"y should be a 1d array, got an array of shape {tuple(yd.shape)} instead; "
                f"{name} fits one target: pass y of shape (n_samples,)."
            )
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
            stacklevel=5,  # the caller of fit: fit -> _fit -> _dask_targets -> _column
        )
        yd = yd[:, 0]
    return yd


class _BaseSGD(BaseEstimator):
    """Parameters, validation and the fit loop shared by SGDClassifier and SGDRegressor."""

    _parameter_constraints = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "shuffle": [StrOptions({"batches"}), "boolean"],
        "verbose": [Interval(Integral, 0, None, closed="left"), "boolean"],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "learning_rate": [StrOptions({"constant", "optimal", "invscaling", "adaptive"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "average": [Interval(Integral, 0, None, closed="neither"), "boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "sync_every": [Interval(Integral, 1, None, closed="left"), StrOptions({"epoch"})],
    }

    _classifier = False

    def _more_validate_params(self, for_partial_fit=False):
        if self.early_stopping and for_partial_fit:
            raise ValueError("early_stopping should be False with partial_fit; pass "
                             "early_stopping=False or call fit instead.")
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("alpha must be > 0 since learning_rate is 'optimal'. alpha is used "
                             "to compute the optimal learning rate; pass alpha > 0 or another "
                             "learning_rate.")
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("l1_ratio must be set when penalty is 'elasticnet'; pass a float "
                             "in [0, 1].")

    def _config(self, n_outputs, sparse):
        return kernels.SGDConfig(
            loss=self.loss, classifier=self._classifier, n_outputs=n_outputs,
            epsilon=float(self.epsilon), penalty=self.penalty, alpha=float(self.alpha),
            l1_ratio=float(self.l1_ratio) if self.l1_ratio is not None else 0.0,
            fit_intercept=bool(self.fit_intercept), learning_rate=self.learning_rate,
            eta0=float(self.eta0), power_t=float(self.power_t), average=int(self.average),
            intercept_decay=SPARSE_INTERCEPT_DECAY if sparse else 1.0,
            compute_loss=(not self.early_stopping) or bool(self.verbose),
        )

    def _seed_for(self, partial):
        """The base seed of the shuffles: fixed across partial_fit calls."""
        if partial and getattr(self, "_seed", None) is not None:
            return self._seed
        rs = self.random_state
        if isinstance(rs, Integral) and not isinstance(rs, bool):
            seed = int(rs)
        else:
            seed = int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        self._seed = seed
        return seed

    def _shuffle_mode(self):
        """``shuffle`` as True, False or "batches"."""
        return "batches" if isinstance(self.shuffle, str) else bool(self.shuffle)

    # -- the fit loop shared by fit and partial_fit --------------------------------------------
    def _run_sgd(self, adapted, y_parts, *, seed, n_outputs, class_weight, state, t_clock,
                 first_epoch, max_epochs, partial):
        """Run the epochs over the persisted partitions; release them; return (state, n_epochs,
        clock after, n_samples)."""
        parts, extra = y_parts
        sparse = adapted.X._meta is not None and hasattr(adapted.X._meta, "tocsr")
        cfg = self._config(n_outputs, sparse)
        lengths = parts.lengths
        n_val = _validation_counts(lengths, self.validation_fraction) \
            if self.early_stopping else [0] * len(lengths)
        if self.early_stopping:
            n_total = sum(lengths)
            if sum(n_val) == 0 or sum(n_val) == n_total:
                raise ValueError(
                    f"Splitting {n_total} samples into a train set and a validation set with "
                    f"validation_fraction={self.validation_fraction!r} led to an empty set "
                    f"({n_total - sum(n_val)} and {sum(n_val)} samples). Please either change "
                    "validation_fraction, increase number of samples, or disable "
                    "early_stopping."
                )
        train_rows = [n - v for n, v in zip(lengths, n_val)]
        plan = _Plan(train_rows, self.batch_size, self.sync_every, n_outputs=n_outputs,
                     itemsize=np.dtype(adapted.X.dtype).itemsize)
        run = _SGDRun(parts, plan, cfg, class_weight=class_weight, seed=seed,
                      shuffle=self._shuffle_mode(), n_val=n_val,
                      early_stopping=bool(self.early_stopping), like=adapted.X,
                      check_values=not adapted.finite_checked)
        n_train = sum(train_rows)
        tol = self.tol if (self.tol is not None and not partial) else None
        eta0 = self.eta0
        track = {"best": None, "count": np.zeros(n_outputs, dtype=int),
                 "stopped": np.zeros(n_outputs, dtype=bool),
                 "scale": np.ones(n_outputs), "start": time.perf_counter()}

        def on_epoch(done, st, val):
            model = _normalized(to_host(st), cfg)
            coef, intercept = model["coef"], model["intercept"]
            if not _is_finite(model):
                raise ValueError(
                    f"Floating-point under-/overflow occurred at epoch #{first_epoch + done}. "
                    "Scaling input data with StandardScaler or MinMaxScaler might help."
                )
            if self.early_stopping:
                score = self._validation_score(val)
                better_is_higher = True
            else:
                score = to_host(_value(st, "loss")) / max(n_train, 1)
                better_is_higher = False
            bar.step(**{"validation score" if self.early_stopping else "loss":
                        float(np.mean(score))})
            if self.verbose:
                msg = (f"-- Epoch {first_epoch + done}\nNorm: {np.linalg.norm(coef):.2f}, "
                       f"NNZs: {int(np.count_nonzero(coef))}, Bias: {float(intercept[0]):.6f}, "
                       f"T: {n_train * done}, ")
                if self.early_stopping:
                    msg += f"Validation score: {float(np.mean(score)):.6f}"
                else:
                    msg += f"Avg. loss: {float(np.mean(score)):.6f}"
                print(msg + f"\nTotal training time: "
                      f"{time.perf_counter() - track['start']:.2f} seconds.")
            if tol is None:
                return False, track["scale"]
            stop, scale = _stopping_rule(track, score, better_is_higher=better_is_higher,
                                         **rule)
            if self.verbose and stop:
                print(f"Convergence after {first_epoch + done} epochs took "
                      f"{time.perf_counter() - track['start']:.2f} seconds")
            return stop, scale

        rule = dict(tol=tol, n_iter_no_change=self.n_iter_no_change,
                    adaptive=self.learning_rate == "adaptive", eta0=eta0)
        bar = LoopProgress(max_epochs, f"{type(self).__name__} epochs", self.verbose)
        try:
            resident = None
            state_bytes = sum(np.asarray(to_host(v)).nbytes for v in state.values())
            # a resident loop sends each member's whole state to every other member: for a
            # large model on three or more workers the sharded allreduce moves less
            small = (state_bytes < _config.get("allreduce_shard_threshold")
                     or len(set(parts.workers)) <= 2)
            if (run.ex.distributed and _config.get("resident") and max_epochs > 1 and small
                    and not self.early_stopping and not self.verbose and not bar.shown):
                try:
                    resident = run.run_resident(
                        state, first_epoch=first_epoch, max_epochs=max_epochs, t0=t_clock,
                        lr_scale=np.ones(n_outputs), n_train=n_train,
                        rule=rule if tol is not None else None)
                except ResidentLoopAborted:
                    resident = None  # the epochs go on round by round, from the start
            if resident is not None:
                state, n_epochs, finite = resident
                if not finite:
                    on_epoch(n_epochs, state, None)  # raises scikit-learn's overflow error
            else:
                state, n_epochs = run.run(state, first_epoch=first_epoch,
                                          max_epochs=max_epochs, t0=t_clock,
                                          lr_scale=np.ones(n_outputs), on_epoch=on_epoch)
        finally:
            bar.close()
            parts.release()
            for p in extra:
                p.release()
        t_after = t_clock + n_epochs * plan.epoch_advance
        return state, n_epochs, t_after, sum(lengths)

    def _initial_state(self, coef, intercept, n_outputs):
        """The client-side state dict (row-weighted sums with n = 1) to start from."""
        cfg = self._config(n_outputs, False)
        model = kernels.init_model(coef, intercept, cfg, xp=np)
        return _pack({**model, "loss": np.zeros(n_outputs)}, 1, np)

    def _finish_fit(self, state, n_outputs, n_epochs, t_after, n_samples, partial, fit_from_t):
        cfg = self._config(n_outputs, False)
        model = _normalized(state, cfg)
        self._sgd_state = {k: v for k, v in model.items()}
        self._sgd_clock = t_after
        self.n_iter_ = int(n_epochs)
        self.t_ = float(fit_from_t + n_epochs * n_samples)
        coef, intercept = model["coef"], model["intercept"]
        if cfg.average and cfg.average <= t_after - 1:
            coef, intercept = model["avg_coef"], model["avg_intercept"]
        self._set_coef(coef, intercept)
        if (not partial and self.tol is not None and self.n_iter_ == self.max_iter):
            warnings.warn(
                "Maximum number of iteration reached before convergence. Consider increasing "
                "max_iter to improve the fit.", ConvergenceWarning,
                stacklevel=4,  # the caller of fit: fit -> _fit -> _finish_fit
            )

    def _start_model(self, n_outputs, n_features, dtype, coef_init, intercept_init, partial):
        """(state, clock, first epoch) to start from: zeros, ``coef_init``, warm start or the
        previous partial_fit."""
        continuing = partial and getattr(self, "_sgd_state", None) is not None
        if continuing:
            prev = self._sgd_state
            if prev["coef"].shape != (n_outputs, n_features):
                raise ValueError(
                    f"Number of features {n_features} does not match previous data "
                    f"{prev['coef'].shape[1]}."
                )
            cfg = self._config(n_outputs, False)
            model = {k: to_host(v) for k, v in prev.items()}
            if cfg.average and "avg_coef" not in model:
                model["avg_coef"] = np.zeros_like(model["coef"])
                model["avg_intercept"] = np.zeros_like(model["intercept"])
            if cfg.has_l1 and "q" not in model:
                model["q"] = np.zeros_like(model["coef"])
                model["u"] = np.zeros_like(model["intercept"])
            state = {k: model[k].astype(dtype, copy=False) for k in kernels.model_keys(cfg)}
            state = _pack({**state, "loss": np.zeros(n_outputs)}, 1, np)
            return state, self._sgd_clock, self._epochs_seen
        coef = np.zeros((n_outputs, n_features), dtype=dtype)
        intercept = np.zeros(n_outputs, dtype=dtype)
        if coef_init is None and self.warm_start and getattr(self, "coef_", None) is not None \
                and not partial:
            coef_init, intercept_init = self._host_coef(), self.intercept_
        if coef_init is not None:
            ci = np.asarray(to_host(coef_init), dtype=dtype)
            if ci.size != n_outputs * n_features or (n_outputs > 1 and ci.shape != coef.shape):
                raise ValueError(
                    f"Provided coef_init does not match dataset: expected shape "
                    f"{coef.shape if n_outputs > 1 else (n_features,)}, got {ci.shape}."
                )
            coef = ci.reshape(coef.shape).copy()
        if intercept_init is not None:
            ii = np.asarray(to_host(intercept_init), dtype=dtype).reshape(-1)
            if ii.shape != (n_outputs,):
                raise ValueError(
                    f"Provided intercept_init does not match dataset: expected shape "
                    f"({n_outputs},), got {ii.shape}."
                )
            intercept = ii.copy()
        return self._initial_state(coef, intercept, n_outputs), 1.0, 0

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- prediction ------------------------------------------------------------------------
    def _adapt_predict(self, X):
        check_is_fitted(self)
        adapted = adapt_X(X, accept_sparse=True, estimator_name=type(self).__name__)
        check_n_features(self, adapted, reset=False)
        return adapted

    def _host_coef(self):
        """``coef_`` as a dense host array (it is a scipy.sparse matrix after ``sparsify``)."""
        coef = self.coef_
        return coef.toarray() if sp.issparse(coef) else np.asarray(to_host(coef))

    def sparsify(self):
        """Convert ``coef_`` to a ``scipy.sparse`` CSR matrix, like scikit-learn's linear models.

        Worth it when most coefficients are zero (an L1 or elastic-net penalty): a CSR matrix
        takes less memory than the dense array. Predictions are unchanged. Fitting again sets
        a dense ``coef_``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        check_is_fitted(self)
        if not sp.issparse(self.coef_):
            self.coef_ = sp.csr_matrix(np.atleast_2d(self._host_coef()))
        return self

    def densify(self):
        """Convert a ``coef_`` made sparse by ``sparsify`` back to a dense NumPy array (of the
        shape it had before); a dense ``coef_`` is left as it is.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        check_is_fitted(self)
        if sp.issparse(self.coef_):
            dense = self.coef_.toarray()
            self.coef_ = dense if self._classifier else dense.reshape(-1)
        return self

    def _model_on(self, adapted):
        """``(coef, intercept, dtype)``: the model next to the data, and the dtype of the
        scores (that of the data and the coefficients together)."""
        coef = self._host_coef().reshape(-1, self.n_features_in_)
        intercept = np.asarray(to_host(self.intercept_)).reshape(-1)
        dtype = np.result_type(adapted.X.dtype, coef.dtype)
        return asarray_like(coef, adapted.X), asarray_like(intercept, adapted.X), dtype

    @staticmethod
    def _give_back(adapted, out, **kw):
        """The output in the caller's type; in-memory input is computed here, not on a cluster."""
        if adapted.lazy:
            return adapted.wrap(out, **kw)
        with dask.config.set(scheduler="threads"):
            return adapted.wrap(out, **kw)

    def _meta(self, adapted, ndim, dtype):
        from .._backend import meta_like

        return meta_like(adapted.X, ndim=ndim, dtype=dtype)


def _dask_targets(y, adapted, *, y_numeric, name):
    yd = adapt_y(y, adapted, y_numeric=y_numeric, estimator_name=name)
    return _column(yd, name)


class SGDClassifier(ClassifierMixin, _BaseSGD):
    """Linear classifiers (SVM, logistic regression, ...) trained by data-parallel SGD.

    scikit-learn's :class:`~sklearn.linear_model.SGDClassifier` on a Dask cluster: every
    partition of the data runs vectorised mini-batch SGD on its own rows from a shared model,
    and the replicas are averaged with :func:`skdml.parallel.allreduce` every ``sync_every``
    mini-batches (local SGD with model averaging). Multiclass problems are one-vs-rest, like
    scikit-learn's, but all classes are trained together as one coefficient matrix in a single
    pass over the data.

    .. versionadded:: 0.1

    Parameters
    ----------
    loss : {'hinge', 'log_loss', 'modified_huber', 'squared_hinge', 'perceptron', \
'squared_error', 'huber', 'epsilon_insensitive', 'squared_epsilon_insensitive'}, default='hinge'
        The loss, as in scikit-learn: 'hinge' gives a linear SVM, 'log_loss' logistic
        regression, 'modified_huber' a smooth hinge with probability estimates.
    penalty : {'l2', 'l1', 'elasticnet', None}, default='l2'
        The regularization term.
    alpha : float, default=0.0001
        Regularization strength; also sets the 'optimal' learning rate.
    l1_ratio : float, default=0.15
        Elastic-net mixing (0: L2, 1: L1); used with ``penalty='elasticnet'``.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data).
    tol : float or None, default=1e-3
        Stop when the epoch's objective (or the validation score with ``early_stopping``) has
        not improved by ``tol`` for ``n_iter_no_change`` epochs; None never stops early.
    shuffle : 'batches' or bool, default='batches'
        How each partition's rows are ordered every epoch (deterministically, from
        ``random_state``, the epoch and the partition; rows never move between partitions).
        'batches': the partition is cut into runs of ``batch_size // 8`` consecutive rows
        (on a grid shifted by a random offset) visited in a random order, so each mini-batch
        is about 8 runs from random places; runs are read at the memory's bandwidth, random
        rows at its latency, so an epoch takes less than half the time it takes with True on
        the benchmark (0.041-0.045 s against 0.101-0.107 s), for the same accuracy. True: every row in a fresh random order
        (scikit-learn's shuffle). False: the stored order.
    verbose : int, default=0
        Print the loss of every epoch.
    epsilon : float, default=0.1
        Epsilon of the 'huber', 'epsilon_insensitive' and 'squared_epsilon_insensitive'
        losses.
    n_jobs : int or None, default=None
        Not used: the work is spread over the Dask cluster's workers, and all classes are
        trained together in one pass. Accepted so that code written for scikit-learn's
        ``SGDClassifier(n_jobs=...)`` runs unchanged.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffles and of the validation split.
    learning_rate : {'optimal', 'constant', 'invscaling', 'adaptive'}, default='optimal'
        The schedule, on the per-sample clock of scikit-learn: 'optimal'
        ``1 / (alpha (t0 + t))``, 'constant' ``eta0``, 'invscaling' ``eta0 / t ** power_t``,
        'adaptive' ``eta0`` divided by 5 whenever ``n_iter_no_change`` epochs fail to improve.
        A mini-batch of ``m`` rows takes the summed gradient of its rows at the rate of its first
        row.
    eta0 : float, default=0.01
        Initial learning rate of the 'constant', 'invscaling' and 'adaptive' schedules.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows of every partition and stop when the
        validation accuracy stops improving.
    validation_fraction : float, default=0.1
        Share of the rows held out with ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping (or dividing an adaptive rate).
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, as in scikit-learn ('balanced': ``n_samples / (n_classes *
        count)``).
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    average : bool or int, default=False
        Averaged SGD: ``coef_`` is the average of the iterates (from the first sample, or from
        sample ``average`` on).
    batch_size : int or 'auto', default='auto'
        Rows per mini-batch (per partition). 'auto': ``ceil(rows / 256)`` (about 256
        mini-batches per partition and epoch), at most 1024 rows, and fewer with many classes.
        Partitions of different sizes get batches in proportion, so all take the same number
        of steps. Beyond 8 rows the learning rate is capped so that summing a batch's
        gradients at one point stays stable (see the user guide).
    sync_every : int or 'epoch', default='epoch'
        Mini-batches each partition runs between two model averagings. 1 is synchronous
        data-parallel SGD (a round trip per mini-batch); 'epoch' averages once per pass over
        the data (local SGD), the fastest, and on the measured problems as accurate; see the
        user guide.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights (float32 for float32 input, else float64; on the input's device).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_iter_ : int
        Epochs run.
    t_ : float
        Weight updates counted like scikit-learn: ``n_iter_ * n_samples + 1``.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in fit, when they are all strings.

    See Also
    --------
    sklearn.linear_model.SGDClassifier : The single-machine estimator this one mirrors.
    SGDRegressor : The same training for regression.

    Notes
    -----
    The data are persisted on the workers once; each round, every partition runs
    ``sync_every`` mini-batches from the shared model and the models are summed, weighted by the
    rows each partition saw, with :func:`skdml.parallel.allreduce`. Each round moves about
    twice the model (``(n_classes or 1) x n_features`` floats, twice that with ``average``)
    per worker; the data never move. The averaged model stays on the workers and feeds the next
    round directly; a whole epoch of rounds is submitted at once and the next epoch before the
    client reads the finished one. The client fetches the model once per epoch (for the
    convergence check and to redo an epoch after a cluster failure).

    The mini-batch update is scikit-learn's per-sample update with the batch's gradients summed
    at the batch's starting point, so the learning-rate schedules and ``alpha`` mean the same
    (for batches of more than 8 rows the rate is capped by the curvature of the loss and of the
    data, so that the summed step stays stable); results are not identical to scikit-learn's
    (which visits one sample at a time) but reach the same accuracy. With several outputs, an
    output whose training has stopped (its own ``n_iter_no_change``) is frozen while the others
    go on, as in scikit-learn's one-vs-rest.
    The results depend on ``random_state`` and on the partitioning of the data, not on how many
    workers there are.

    ``predict``, ``decision_function`` and ``predict_proba`` are lazy for Dask input.
    ``partial_fit`` is one distributed pass over the data it is given.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skdml.linear_model import SGDClassifier
    >>> X, y = make_classification(n_samples=600, n_features=8, random_state=0)
    >>> clf = SGDClassifier(loss="log_loss", max_iter=10, tol=None, random_state=0).fit(X, y)
    >>> clf.coef_.shape, clf.n_iter_
    ((1, 8), 10)
    >>> bool(clf.score(X, y) > 0.8)
    True
    """

    _classifier = True
    _parameter_constraints = {
        **_BaseSGD._parameter_constraints,
        "loss": [StrOptions(set(kernels.CLASSIFICATION_LOSSES))],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, loss="hinge", *, penalty="l2", alpha=0.0001, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle="batches", verbose=0,
                 epsilon=0.1, n_jobs=None, random_state=None, learning_rate="optimal",
                 eta0=0.01, power_t=0.5, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False, average=False,
                 batch_size="auto", sync_every="epoch"):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.sync_every = sync_every

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the linear model with data-parallel SGD.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            Training data (NumPy, scipy.sparse, CuPy, Dask, pandas or xarray).
        y : array-like of shape (n_samples,)
            Class labels (numbers or strings).
        coef_init : ndarray of shape (n_classes, n_features), default=None
            Initial coefficients.
        intercept_init : ndarray of shape (n_classes,), default=None
            Initial intercepts.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied with ``class_weight``.

        Returns
        -------
        self : SGDClassifier
            The fitted estimator.
        """
        validate_params(self)
        self._more_validate_params()
        for attr in ("classes_", "_sgd_state"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self._fit(X, y, classes=None, sample_weight=sample_weight, coef_init=coef_init,
                         intercept_init=intercept_init, partial=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One distributed pass of SGD over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call, optional (and checked) afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        self : SGDClassifier
            The updated estimator.
        """
        validate_params(self)
        first = not hasattr(self, "classes_")
        if first:
            self._more_validate_params(for_partial_fit=True)
            if isinstance(self.class_weight, str) and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit. In order to use "
                    "'balanced' weights, use compute_class_weight('balanced', classes=classes, "
                    "y=y). In place of y you can use a large enough sample of the full training "
                    "set target to properly estimate the class frequency distributions. Pass "
                    "the resulting weights as the class_weight parameter."
                )
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            classes = np.unique(to_host(np.asarray(classes)))
        elif classes is not None:
            given = np.unique(to_host(np.asarray(classes)))
            if not np.array_equal(given, self.classes_):
                raise ValueError(
                    f"`classes={given.tolist()!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_.tolist()!r}"
                )
            classes = self.classes_
        else:
            classes = self.classes_
        return self._fit(X, y, classes=classes, sample_weight=sample_weight, coef_init=None,
                         intercept_init=None, partial=True)

    def _fit(self, X, y, *, classes, sample_weight, coef_init, intercept_init, partial):
        name = type(self).__name__
        first = not partial or not hasattr(self, "classes_")
        # Dask input: NaN and infinity are caught by the first epoch's kernel, not by a pass
        # of their own (with early stopping the validation rows are not trained on: checked
        # while persisted, as usual)
        adapted = adapt_X(X, accept_sparse=True, estimator_name=name,
                          defer_finite=not self.early_stopping)
        check_n_features(self, adapted, reset=first)
        yd = _dask_targets(y, adapted, y_numeric=False, name=name)
        w = adapt_sample_weight(sample_weight, adapted, allow_all_zero=self.early_stopping)
        seed = self._seed_for(partial)
        extra = []
        if classes is not None and not _is_lazy(y):
            y_host = to_host(yd.compute(scheduler="sync"))
            check_classification_targets(y_host)
            enc = _encode_labels(y_host, classes)
            counts = np.bincount(enc, minlength=len(classes))
            parts = _persist(adapted.X, adapt_y(asarray_like(enc, adapted.X), adapted), w)
        elif classes is None and not _is_lazy(y):
            y_host = to_host(yd.compute(scheduler="sync"))
            check_classification_targets(y_host)
            classes, enc, counts = np.unique(y_host, return_inverse=True, return_counts=True)
            self._check_n_classes(classes)
            parts = _persist(
                adapted.X, adapt_y(asarray_like(enc.ravel(), adapted.X), adapted), w)
        elif classes is not None:
            enc = yd.map_blocks(_encode_block, classes, dtype=np.int64,
                                meta=np.empty((0,), dtype=np.int64))
            parts = _persist(adapted.X, enc, w)
            counts = None
        else:
            # The labels are counted as the partitions are persisted (no round trip of its
            # own). int64 labels that are the classes 0 .. n-1 themselves (the common case) are
            # used as they are; other labels are encoded once the client has the classes. (An
            # encoding submitted with the persist, before the classes were known, ran beside the
            # first epoch when it was not needed, on the same cores: measured 23-40 ms instead
            # of 20 ms for the first epoch's partitions.)
            raw = _persist(adapted.X, yd, w, summarize=_unique_task, name="sgd-classes")
            extra.append(raw)
            try:
                classes, counts = aggregate(raw.summary, _merge_counts, name="sgd-classes-sum")
                check_classification_targets(classes)
                self._check_n_classes(classes)
            except ValueError:
                raw.release()
                raise
            enc = None
            if not (np.dtype(yd.dtype) == np.int64 and _labels_are_indices(classes)):
                enc = map_partitions(_encode_task, raw, (classes, counts),
                                     group_by="partition", speculative=False, name="sgd-encode")
            parts = raw if enc is None else Partitions(
                blocks=[(b[0], e, b[2]) for b, e in zip(raw.blocks, enc)], workers=raw.workers,
                lengths=raw.lengths, nthreads=raw.nthreads, arrays=raw.arrays)
        self._check_n_classes(classes)
        n_classes = len(classes)
        n_outputs = 1 if n_classes == 2 else n_classes
        class_weight = self._class_weight_vector(classes, counts)
        dtype = np.dtype(adapted.X.dtype)
        if not first and n_outputs * self.n_features_in_ != \
                np.asarray(self._sgd_state["coef"]).size:
            raise ValueError("The number of outputs changed since the last partial_fit.")
        state, t_clock, first_epoch = self._start_model(
            n_outputs, adapted.n_features, dtype, coef_init, intercept_init, partial)
        fit_from_t = float(getattr(self, "t_", 1.0)) if partial and not first else 1.0
        state, n_epochs, t_after, n_samples = self._run_sgd(
            adapted, (parts, extra), seed=seed, n_outputs=n_outputs, class_weight=class_weight,
            state=state, t_clock=t_clock, first_epoch=first_epoch,
            max_epochs=1 if partial else self.max_iter, partial=partial)
        self.classes_ = classes
        self._epochs_seen = first_epoch + n_epochs
        self._finish_fit(state, n_outputs, n_epochs, t_after, n_samples, partial, fit_from_t)
        return self

    def _check_n_classes(self, classes):
        if len(classes) < 2:
            raise ValueError(
                f"The number of classes has to be greater than one; got {len(classes)} class "
                f"({np.asarray(classes).tolist()!r}). {type(self).__name__} needs samples of at "
                "least two classes in y."
            )

    def _class_weight_vector(self, classes, counts):
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):  # "balanced" (partial_fit refuses it earlier)
            counts = np.asarray(counts, dtype=np.float64)
            return tuple(float(v) for v in counts.sum() / (len(classes) * counts))
        return tuple(float(v) for v in compute_class_weight(cw, classes=classes, y=classes))

    def _validation_score(self, val):
        return to_host(val["correct"]) / max(float(to_host(val["weight"])[0]), 1e-300)

    def _set_coef(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    # -- prediction ------------------------------------------------------------------------
    def decision_function(self, X):
        """Signed distances to the hyperplanes: ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,) or (n_samples, n_classes)
            The scores (lazy for Dask input); 1-D for binary problems.
        """
        adapted = self._adapt_predict(X)
        coef, intercept, dtype = self._model_on(adapted)
        Xd = adapted.X
        if coef.shape[0] == 1:
            out = Xd.map_blocks(_decision_block, coef, intercept, True, drop_axis=1,
                                chunks=(Xd.chunks[0],), dtype=dtype,
                                meta=self._meta(adapted, 1, dtype))
        else:
            out = Xd.map_blocks(_decision_block, coef, intercept, False,
                                chunks=(Xd.chunks[0], (coef.shape[0],)), dtype=dtype,
                                meta=self._meta(adapted, 2, dtype))
        return self._give_back(adapted, out, columns=self.classes_ if coef.shape[0] > 1 else None,
                               dim="class")

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,)
            The labels (lazy for Dask input).
        """
        adapted = self._adapt_predict(X)
        coef, intercept, _ = self._model_on(adapted)
        Xd = adapted.X
        classes = self.classes_
        meta = np.empty((0,), dtype=classes.dtype)
        if classes.dtype.kind in "biuf":
            meta = self._meta(adapted, 1, classes.dtype)
        out = Xd.map_blocks(_predict_block, coef, intercept, classes, drop_axis=1,
                            chunks=(Xd.chunks[0],), dtype=classes.dtype, meta=meta)
        return self._give_back(adapted, out)

    def _check_proba(self):
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(
                f"probability estimates are not available for loss={self.loss!r}; use "
                "loss='log_loss' or 'modified_huber'."
            )
        return True

    def _proba(self, X, log):
        adapted = self._adapt_predict(X)
        coef, intercept, dtype = self._model_on(adapted)
        Xd = adapted.X
        k = len(self.classes_)
        out = Xd.map_blocks(_proba_block, coef, intercept, self.loss, log,
                            chunks=(Xd.chunks[0], (k,)), dtype=dtype,
                            meta=self._meta(adapted, 2, dtype))
        return self._give_back(adapted, out, columns=self.classes_, dim="class")

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Probability estimates (``loss='log_loss'`` or ``'modified_huber'``).

        Binary: the logistic function (log_loss) or ``(clip(d, -1, 1) + 1) / 2``
        (modified_huber) of the decision; multiclass: the one-vs-rest estimates normalized to
        sum to one, as in scikit-learn.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_`` (lazy for Dask input).
        """
        return self._proba(X, log=False)

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples, n_classes)
            Log-probabilities (lazy for Dask input).
        """
        return self._proba(X, log=True)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``X``, ``y`` (weighted by ``sample_weight``).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,)
            True labels (labels unseen in fit count as errors).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            The accuracy (computed on the cluster for Dask input).
        """
        if not (_is_lazy(X) or _is_lazy(y)):
            return super().score(X, y, sample_weight=sample_weight)
        pred = self.predict(X)
        pred = pred if is_dask_array(pred) else da.from_array(pred)
        yd = y if is_dask_array(y) else da.from_array(np.asarray(y))
        yd = yd.rechunk(pred.chunks)
        right = (pred == yd).astype(np.float64)
        if sample_weight is None:
            return float(right.mean().compute())
        wd = sample_weight if is_dask_array(sample_weight) else da.from_array(
            np.asarray(sample_weight, dtype=np.float64))
        wd = wd.rechunk(pred.chunks)
        num, den = dask.compute((right * wd).sum(), wd.sum())
        return float(num / den)


class SGDRegressor(RegressorMixin, _BaseSGD):
    """Linear regression trained by data-parallel SGD.

    scikit-learn's :class:`~sklearn.linear_model.SGDRegressor` on a Dask cluster: every
    partition runs vectorised mini-batch SGD on its own rows from a shared model and the
    replicas are averaged with :func:`skdml.parallel.allreduce` every ``sync_every``
    mini-batches. See :class:`SGDClassifier` for the algorithm.

    .. versionadded:: 0.1

    Parameters
    ----------
    loss : {'squared_error', 'huber', 'epsilon_insensitive', \
'squared_epsilon_insensitive'}, default='squared_error'
        The loss, as in scikit-learn.
    penalty : {'l2', 'l1', 'elasticnet', None}, default='l2'
        The regularization term.
    alpha : float, default=0.0001
        Regularization strength.
    l1_ratio : float, default=0.15
        Elastic-net mixing; used with ``penalty='elasticnet'``.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float or None, default=1e-3
        Stopping tolerance on the epoch's objective (or validation R^2 with
        ``early_stopping``); None never stops early.
    shuffle : 'batches' or bool, default='batches'
        'batches': runs of ``batch_size // 8`` consecutive rows of each partition in a fresh
        random order every epoch (see :class:`SGDClassifier`); True: every row in a fresh
        random order (scikit-learn's shuffle); False: the stored order.
    verbose : int, default=0
        Print the loss of every epoch.
    epsilon : float, default=0.1
        Epsilon of the 'huber' and epsilon-insensitive losses.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffles and of the validation split.
    learning_rate : {'invscaling', 'optimal', 'constant', 'adaptive'}, default='invscaling'
        The schedule (see :class:`SGDClassifier`).
    eta0 : float, default=0.01
        Initial learning rate.
    power_t : float, default=0.25
        Exponent of the 'invscaling' schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when the validation R^2 stops
        improving.
    validation_fraction : float, default=0.1
        Share of the rows held out with ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    average : bool or int, default=False
        Averaged SGD.
    batch_size : int or 'auto', default='auto'
        Rows per mini-batch (see :class:`SGDClassifier`).
    sync_every : int or 'epoch', default='epoch'
        Mini-batches between two model averagings (see :class:`SGDClassifier`).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Weights.
    intercept_ : ndarray of shape (1,)
        Intercept.
    n_iter_ : int
        Epochs run.
    t_ : float
        ``n_iter_ * n_samples + 1``, like scikit-learn.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in fit, when they are all strings.

    See Also
    --------
    sklearn.linear_model.SGDRegressor : The single-machine estimator this one mirrors.
    SGDClassifier : The same training for classification.

    Notes
    -----
    Each round moves about twice the model (``n_features + 1`` floats, twice that with
    ``average``) per worker; the data never move. ``predict`` is lazy for Dask input.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skdml.linear_model import SGDRegressor
    >>> X, y = make_regression(n_samples=500, n_features=5, noise=1.0, random_state=0)
    >>> reg = SGDRegressor(max_iter=20, tol=None, random_state=0).fit(X, y)
    >>> reg.coef_.shape
    (5,)
    >>> bool(reg.score(X, y) > 0.99)
    True
    """

    _parameter_constraints = {
        **_BaseSGD._parameter_constraints,
        "loss": [StrOptions(set(kernels.REGRESSION_LOSSES))],
    }

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle="batches", verbose=0,
                 epsilon=0.1, random_state=None, learning_rate="invscaling", eta0=0.01,
                 power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average=False, batch_size="auto",
                 sync_every="epoch"):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.sync_every = sync_every

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the linear model with data-parallel SGD.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        coef_init : ndarray of shape (n_features,), default=None
            Initial coefficients.
        intercept_init : ndarray of shape (1,), default=None
            Initial intercept.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        self : SGDRegressor
            The fitted estimator.
        """
        validate_params(self)
        self._more_validate_params()
        if hasattr(self, "_sgd_state"):
            del self._sgd_state
        return self._fit(X, y, sample_weight=sample_weight, coef_init=coef_init,
                         intercept_init=intercept_init, partial=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One distributed pass of SGD over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            A batch of training data.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        self : SGDRegressor
            The updated estimator.
        """
        validate_params(self)
        if getattr(self, "_sgd_state", None) is None:
            self._more_validate_params(for_partial_fit=True)
        return self._fit(X, y, sample_weight=sample_weight, coef_init=None,
                         intercept_init=None, partial=True)

    def _fit(self, X, y, *, sample_weight, coef_init, intercept_init, partial):
        name = type(self).__name__
        first = not partial or getattr(self, "_sgd_state", None) is None
        # Dask input: NaN and infinity are caught by the first epoch's kernel, not by a pass
        # of their own (with early stopping the validation rows are not trained on: checked
        # while persisted, as usual)
        adapted = adapt_X(X, accept_sparse=True, estimator_name=name,
                          defer_finite=not self.early_stopping)
        check_n_features(self, adapted, reset=first)
        yd = _dask_targets(y, adapted, y_numeric=True, name=name)
        dtype = np.dtype(adapted.X.dtype)
        if yd.dtype != dtype:
            yd = yd.astype(dtype)
        w = adapt_sample_weight(sample_weight, adapted, allow_all_zero=self.early_stopping)
        seed = self._seed_for(partial)
        parts = _persist(adapted.X, yd, w)
        state, t_clock, first_epoch = self._start_model(
            1, adapted.n_features, dtype, coef_init, intercept_init, partial)
        fit_from_t = float(getattr(self, "t_", 1.0)) if partial and not first else 1.0
        state, n_epochs, t_after, n_samples = self._run_sgd(
            adapted, (parts, []), seed=seed, n_outputs=1, class_weight=None, state=state,
            t_clock=t_clock, first_epoch=first_epoch,
            max_epochs=1 if partial else self.max_iter, partial=partial)
        self._epochs_seen = first_epoch + n_epochs
        self._finish_fit(state, 1, n_epochs, t_after, n_samples, partial, fit_from_t)
        return self

    def _validation_score(self, val):
        w, wy, wyy, sse = (float(to_host(val[k])[0]) for k in ("w", "wy", "wyy", "sse"))
        sst = wyy - wy * wy / w if w > 0 else 0.0
        if sst <= 0:
            return np.array([1.0 if sse <= 0 else 0.0])
        return np.array([1.0 - sse / sst])

    def _set_coef(self, coef, intercept):
        self.coef_ = coef.reshape(-1)
        self.intercept_ = intercept.reshape(1)

    def predict(self, X):
        """Predict with the linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            The data.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,)
            Predicted values (lazy for Dask input).
        """
        adapted = self._adapt_predict(X)
        coef, intercept, dtype = self._model_on(adapted)
        Xd = adapted.X
        out = Xd.map_blocks(_decision_block, coef, intercept, True, drop_axis=1,
                            chunks=(Xd.chunks[0],), dtype=dtype,
                            meta=self._meta(adapted, 1, dtype))
        return self._give_back(adapted, out)

    def score(self, X, y, sample_weight=None):
        """R^2 of the prediction (weighted by ``sample_weight``).

        Parameters
        ----------
        X : {array-like, sparse matrix, dask.array.Array} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,)
            True values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            The coefficient of determination (computed on the cluster for Dask input).
        """
        if not (_is_lazy(X) or _is_lazy(y)):
            return super().score(X, y, sample_weight=sample_weight)
        pred = self.predict(X)
        pred = pred if is_dask_array(pred) else da.from_array(pred)
        yd = y if is_dask_array(y) else da.from_array(np.asarray(y))
        yd = yd.rechunk(pred.chunks).astype(np.float64)
        wd = da.ones_like(yd) if sample_weight is None else (
            sample_weight if is_dask_array(sample_weight) else da.from_array(
                np.asarray(sample_weight, dtype=np.float64))).rechunk(pred.chunks)
        sw, swy, swyy, sse = dask.compute(wd.sum(), (wd * yd).sum(), (wd * yd * yd).sum(),
                                          (wd * (yd - pred) ** 2).sum())
        sst = swyy - swy * swy / sw
        return float(1.0 - sse / sst) if sst > 0 else (1.0 if sse == 0 else 0.0)
