"""KMeans: the estimator shell and its driver (initialisation and Lloyd iterations).

The driver persists the data once, then every stage maps a kernel of
:mod:`skdml.cluster._kmeans_kernels` over the persisted partitions with
:func:`skdml.parallel.map_partitions` (one task per worker thread, pre-combined locally) and
brings the small combined result to the client with :func:`skdml.parallel.aggregate` (a tree
of fan-in ``split_every``). The client keeps the model (centers, in float64) and decides when to
stop; each iteration runs through :func:`skdml.parallel.run_step`, so a worker lost mid-iteration
costs that iteration, not the fit. On a cluster the Lloyd iterations are summed with
:func:`skdml.parallel.allreduce` instead, and each one is submitted before the client reads the
one before it (see ``_Driver._iterate``).

Random numbers are drawn per *global row* from a counter-based generator (Philox) keyed by
``(random_state, stage, run, round)``, so sampling does not depend on scheduling, retries or
on how the rows are partitioned.
"""
from __future__ import annotations

import functools
import numbers
import operator
import warnings

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.cluster import KMeans as _SKLearnKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from .. import _config
from .._backend import asarray_like, get_namespace, meta_like, to_host
from .._progress import LoopProgress
from .._validation import (
    Interval,
    StrOptions,
    adapt_sample_weight,
    adapt_X,
    check_n_features,
    validate_params,
)
from ..parallel import (
    CLUSTER_ERRORS,
    aggregate,
    allreduce,
    get_executor,
    map_partitions,
    ResidentLoopAborted,
    persist_partitions,
    run_resident,
    run_step,
)
from ..parallel._executor import new_name
from . import _kmeans_fused as F
from . import _kmeans_kernels as K

__all__ = ["KMeans"]

# Seed streams (the first entry of the SeedSequence spawn key).
_STREAM_SAMPLE = 1   # "random" and "k-means++" samples
_STREAM_FIRST = 2    # k-means|| first center
_STREAM_ROUND = 3    # k-means|| oversampling rounds
_STREAM_CLIENT = 4   # client-side draws (k-means++ on the sample or on the candidates)
_STREAM_CALLABLE = 5

#: Default number of k-means|| oversampling rounds. The O(log psi) rounds of the analysis grow
#: with the scale of the data; in practice a few rounds of ``l = 2k`` points suffice (Bahmani et
#: al. use 5, Spark MLlib 2). Measured on blobs, overlapping blobs and uniform data: 1 round is
#: clearly worse, 2-5 rounds give the same final inertia within noise, each round costs about
#: 2.5 Lloyd iterations.
_DEFAULT_INIT_ROUNDS = 3
#: "k-means++" runs on a uniform sample of this many rows (or 20 per cluster if more), or on
#: all rows when there are fewer.
_PP_SAMPLE = 10_000
#: Runs of weighted k-means++ and Lloyd on the k-means|| candidates (on the client).
_REDUCE_N_INIT = 10
#: Submit each Lloyd pass on a cluster before the client reads the one before it.
_PIPELINE = True


# ------------------------------------------------------------------------------------------------
# Helpers that run on the workers (module level, so Dask pickles them by reference)
# ------------------------------------------------------------------------------------------------
def _like(value, X, dtype=None):
    """A small host array moved next to block ``X`` (its library and device), in ``dtype``."""
    return asarray_like(value, X, dtype=X.dtype if dtype is None else dtype)


def _uniforms(entropy, stream, start, n):
    """Uniform draws in (0, 1] for global rows ``start .. start + n - 1`` of ``stream``.

    Philox is counter-based: row ``i`` always gets the same draw whichever partition holds it.
    """
    key = np.random.SeedSequence(entropy, spawn_key=tuple(stream)).generate_state(2, np.uint64)
    bitgen = np.random.Philox(key=key)
    bitgen.advance(start // 4)  # each Philox4x64 counter step yields four draws
    gen = np.random.Generator(bitgen)
    if start % 4:
        gen.random(start % 4)
    return 1.0 - gen.random(n)


def _lloyd_task(X, w, C2, e, *, n_runs, with_inertia, shift, jit=True):
    if F.usable(X, jit):
        return F.lloyd_partial(X, w, C2, e, n_runs=n_runs, with_inertia=with_inertia,
                               shift=shift)
    xp = get_namespace(X)
    out = K.lloyd_partial(X, w, _like(C2, X), _like(e, X), n_runs=n_runs,
                          with_inertia=with_inertia,
                          shift=None if shift is None else _like(shift, X), xp=xp)
    return to_host(out)


def _lloyd_next_task(X, w, stats, *, prev, shift, dtype, tol, tol_abs, first, force_iter,
                     with_inertia, jit=True):
    """A Lloyd pass from the statistics of the pass before it (``stats``, summed across the
    workers), submitted before the client has read them; ``None`` (skipped) where the driver
    must decide the next centers itself."""
    new = _next_centers(stats, prev, tol=tol, tol_abs=tol_abs, first=first,
                        force_iter=force_iter)
    if new is None:
        return None
    C2, e = _terms(new.reshape(-1, new.shape[-1]), shift, dtype)
    return _lloyd_task(X, w, C2, e, n_runs=new.shape[0], with_inertia=with_inertia,
                       shift=None, jit=jit)


def _resident_lloyd(blocks, comm, *, centers, shift, dtype, tol, tol_abs, start, max_iter,
                    need_moments, force_iter, jit=True):
    """Lloyd passes on one member of a resident loop (:func:`skdml.parallel.run_resident`):
    its partitions' statistics, summed across the members by ``comm.allreduce``, then the next
    centers computed as the client computes them (:func:`_next_centers`, the same bits on every
    member), until the client must decide (an empty cluster, a run that stops) or the last
    pass. Returns (the last pass's number, the centers it used, its summed statistics, the
    absolute tolerance from the first pass's moments)."""
    n_runs, k, d = centers.shape
    prev = centers
    it = start
    while True:
        moments = need_moments and it == 0
        C2, e = _terms(prev.reshape(-1, d), shift, dtype)
        local = None
        for X, w in blocks:
            part = _lloyd_task(X, w, C2, e, n_runs=n_runs, with_inertia=False,
                               shift=shift.astype(dtype) if moments else None, jit=jit)
            local = part if local is None else K.add_stats(local, part)
        stats = comm.allreduce(local, K.add_stats)
        if it + 1 >= max_iter:
            return it, prev, stats, tol_abs
        new = _next_centers(stats, prev, tol=tol, tol_abs=tol_abs, first=moments,
                            force_iter=force_iter)
        if new is None:
            return it, prev, stats, tol_abs
        if moments:
            tol_abs = _tol_abs(stats, tol)
        prev = new
        it += 1


def _add_or_skip(a, b):
    """:func:`add_stats`, for passes whose tasks may all have been skipped (``None``)."""
    return None if a is None or b is None else K.add_stats(a, b)


def _assign_task(X, w, C2, e, centers, *, n_runs, return_labels, partition, jit=True):
    if F.usable(X, jit):
        out = F.assign_partial(X, w, C2, e, centers, n_runs=n_runs,
                               return_labels=return_labels)
    else:
        xp = get_namespace(X)
        out = to_host(K.assign_partial(X, w, _like(C2, X), _like(e, X), _like(centers, X),
                                       n_runs=n_runs, return_labels=return_labels, xp=xp))
    if return_labels:
        out["labels"] = {partition: out["labels"]}
    return out


def _farthest_task(X, w, C2, e, centers, *, n_far, offsets, partition):
    xp = get_namespace(X)
    return to_host(K.farthest_partial(X, w, _like(C2, X), _like(e, X), _like(centers, X),
                                      n_far, int(offsets[partition]), xp=xp))


def _sample_task(X, w, *, n_keep, weighted, entropy, streams, offsets, partition):
    xp = get_namespace(X)
    start = int(offsets[partition])
    out = []
    for stream in streams:
        u = _like(_uniforms(entropy, stream, start, X.shape[0]), X, dtype=np.float64)
        out.append(to_host(K.sample_partial(X, w, u, n_keep, start, weighted=weighted, xp=xp)))
    return out


def _merge_sample_lists(a, b, *, n_keep):
    return [K.merge_top(x, y, n_keep=n_keep) for x, y in zip(a, b)]


def _par_first_task(X, *, first):
    return K.par_first(X, _like(first, X), xp=get_namespace(X))


def _par_update_task(X, state, *, C2T, e, first_id):
    return K.par_update(X, state, _like(C2T, X), _like(e, X), first_id,
                        xp=get_namespace(X))


def _par_select_task(X, w, state, *, oversampling, entropy, stream, offsets, partition):
    xp = get_namespace(X)
    start = int(offsets[partition])
    u = _like(_uniforms(entropy, stream, start, X.shape[0]), X, dtype=np.float64)
    return to_host(K.par_select(X, w, state, u, oversampling, start, xp=xp))


def _par_weigh_task(X, w, state, C2T, e, *, first_id, n_candidates):
    return to_host(K.par_weigh(X, w, state, _like(C2T, X), _like(e, X), first_id,
                               n_candidates, xp=get_namespace(X)))


def _labels_task(X, *, C2, e, jit=True):
    if F.usable(X, jit):
        return F.labels_block(X, C2, e)
    return K.labels_block(X, _like(C2, X), _like(e, X), xp=get_namespace(X))


def _distances_task(X, *, C2, e, shift):
    return K.distances_block(X, _like(C2, X), _like(e, X), _like(shift, X),
                             xp=get_namespace(X))


def _inertia_task(X, w=None, *, C2, e, centers, jit=True):
    if F.usable(X, jit):
        return F.assign_partial(X, w, C2, e, centers)["inertia"]
    return K.inertia_block(X, w, _like(C2, X), _like(e, X), _like(centers, X),
                           xp=get_namespace(X))


def _jit():
    """The ``jit`` setting as read on the client, passed to the tasks (a setting changed on
    the client does not reach worker processes' own dask.config)."""
    return bool(_config.get("jit"))


def _kernel_layout(X, jit=True):
    """The block in the memory order its kernels are fastest on: row-major (C) for NumPy
    blocks the compiled kernels take (they read a row at a time), column-major (Fortran)
    otherwise, where ``X_block^T`` is then contiguous, which makes the array-API kernels'
    GEMMs and reductions over the centers faster (measured 10-40%)."""
    mod = type(X).__module__.split(".")[0]
    if mod == "numpy":
        # aligned too: a block deserialized at an odd address would be another argument type
        # for the compiled kernels (a compilation in every worker) and slower to read
        C = np.require(X, requirements=["C", "A"])
        return C if F.usable(C, jit) else np.asfortranarray(X)
    if mod == "cupy":  # pragma: no cover - GPU
        import cupy

        return cupy.asfortranarray(X)
    return X


# ------------------------------------------------------------------------------------------------
# Client-side helpers
# ------------------------------------------------------------------------------------------------
def _terms(centers, shift, dtype):
    """:func:`center_terms` computed in float64 on the host, then cast to the data dtype."""
    import array_api_compat.numpy as npx

    C2, e = K.center_terms(np.asarray(centers, dtype=np.float64),
                           np.asarray(shift, dtype=np.float64), xp=npx)
    return np.ascontiguousarray(C2, dtype=dtype), np.asarray(e, dtype=dtype)


def _terms_t(centers, shift, dtype):
    """``(C2^T, e)`` for the row-major k-means|| kernels (``C2^T`` contiguous)."""
    C2, e = _terms(centers, shift, dtype)
    return np.ascontiguousarray(C2.T), e


def _predict_terms(centers, dtype):
    """Terms of fitted centers (shift = their mean): the same in ``fit`` and ``predict``."""
    c64 = np.asarray(to_host(centers), dtype=np.float64)
    shift = c64.mean(axis=0)
    C2, e = _terms(c64, shift, dtype)
    return C2, e, shift.astype(dtype)


def _client_seed(entropy, *key):
    return int(np.random.SeedSequence(entropy, spawn_key=(_STREAM_CLIENT,) + key)
               .generate_state(1)[0])


def _offsets(parts):
    return np.concatenate([[0], np.cumsum(parts.lengths)[:-1]]).astype(np.int64)


def _average(sums, weights):
    """New centers from weighted sums; an empty cluster takes the biggest cluster's center."""
    out = np.empty_like(sums)
    full = weights > 0
    out[full] = sums[full] / weights[full, None]
    if not full.all():
        out[~full] = out[int(np.argmax(weights))]
    return out


def _moved(new, old):
    """Squared center shift of one run (scikit-learn's convergence measure)."""
    return float(((new - old) ** 2).sum())


def _tol_abs(stats, tol):
    """scikit-learn's absolute tolerance: ``tol`` times the mean feature variance, from the
    moments of the first pass."""
    n = float(stats["n"])
    mean = stats["s1"] / n
    var = np.maximum(stats["s2"] / n - mean**2, 0)
    return float(np.mean(var) * tol)


def _next_centers(stats, prev, *, tol, tol_abs, first, force_iter):
    """The centers of the next Lloyd pass, computed from a pass's summed statistics and the
    centers it used (``prev``, float64, runs x k x d) exactly as the driver computes them, so
    to the same bits; ``None`` where the driver must decide itself: an empty cluster to
    re-seed, or a run that stops (``first``: the pass carries the moments ``tol`` needs)."""
    n_runs, k, d = prev.shape
    weights = np.asarray(stats["weights"]).reshape(n_runs, k)
    if (weights == 0).any():
        return None
    sums = np.asarray(stats["sums"]).reshape(n_runs, k, d)
    if first and "s1" in stats:
        tol_abs = _tol_abs(stats, tol)
    new = np.empty_like(prev)
    for j in range(n_runs):
        new[j] = _average(sums[j].copy(), weights[j].copy())
        if not force_iter:
            moved = _moved(new[j], prev[j])
            if moved == 0 or moved <= tol_abs:
                return None
    return new


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------
class _Driver:
    """One fit over persisted partitions: initialisation, Lloyd iterations, final E-step."""

    def __init__(self, parts, *, n_clusters, dtype, entropy, verbose):
        self.parts = parts
        self.k = n_clusters
        self.dtype = np.dtype(dtype)
        self.entropy = entropy
        self.verbose = verbose
        self.offsets = _offsets(parts)
        self.weighted = parts.blocks[0][1] is not None

    def _say(self, msg):
        if self.verbose:
            print(msg)

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, n_keep, streams, *, weighted):
        """Rows with the top keys of each stream (one pass, reads only what it returns)."""
        combine = functools.partial(_merge_sample_lists, n_keep=n_keep)

        def step():
            partial = map_partitions(_sample_task, self.parts, n_keep=n_keep, weighted=weighted,
                                     entropy=self.entropy, streams=streams,
                                     offsets=self.offsets, with_index=True, combine=combine,
                                     name="kmeans-init-sample")
            return aggregate(partial, combine, name="kmeans-init-sample")

        return run_step(step, name="kmeans-init-sample")

    def init_random(self, n_runs):
        picks = self.sample(self.k, [(_STREAM_SAMPLE, r) for r in range(n_runs)],
                            weighted=self.weighted)
        return np.stack([np.asarray(p["rows"], dtype=np.float64) for p in picks])

    def init_kmeanspp(self, n_runs):
        n = self.parts.n_samples
        size = min(n, max(_PP_SAMPLE, 20 * self.k))
        (sample,) = self.sample(size, [(_STREAM_SAMPLE, 0)], weighted=False)
        rows = np.asarray(sample["rows"], dtype=np.float64)
        weight = np.asarray(sample["weight"], dtype=np.float64)
        self._say(f"k-means++ on {rows.shape[0]} of {n} rows")
        return np.stack([
            kmeans_plusplus(rows, self.k, sample_weight=weight,
                            random_state=_client_seed(self.entropy, r))[0]
            for r in range(n_runs)])

    def init_kmeans_par(self, run, oversampling_factor, rounds):
        """k-means|| (Bahmani et al. 2012) for one run; returns (k, d) float64 centers."""
        parts, dtype = self.parts, self.dtype
        (first,) = self.sample(1, [(_STREAM_FIRST, run)], weighted=self.weighted)
        cand_rows = [np.asarray(first["rows"], dtype=np.float64)]
        cand_index = [np.asarray(first["index"])]
        shift = cand_rows[0][0]
        Xp = parts.arrays[0]
        wp = parts.arrays[1] if self.weighted else None
        state = Xp.map_blocks(_par_first_task, first=shift.astype(dtype), dtype=dtype,
                              chunks=(Xp.chunks[0], (3,)), meta=meta_like(Xp, ndim=2),
                              name=f"skdml-kmeans-init-state-{tokenize(Xp, shift, run)}")
        oversampling = oversampling_factor * self.k
        n_cands = 1
        sparts = None
        for r in range(rounds):
            sparts = run_step(persist_partitions, Xp, wp, state, name="kmeans-init-state")
            # Build the next round on the persisted state: its graph then starts from data in
            # memory (and, on a cluster, tasks lost with a worker are recomputed from there).
            state = sparts.arrays[-1]

            def select(sparts=sparts, r=r):
                partial = map_partitions(
                    _par_select_task, sparts, oversampling=oversampling, entropy=self.entropy,
                    stream=(_STREAM_ROUND, run, r), offsets=self.offsets, with_index=True,
                    combine=K.merge_selected, name="kmeans-init-select")
                return aggregate(partial, K.merge_selected, name="kmeans-init-select")

            sel = run_step(select, name="kmeans-init-select")
            phi = float(sel["phi"])
            keep = oversampling * np.asarray(sel["weight"]) * np.asarray(sel["d2"]) \
                > np.asarray(sel["u"]) * phi
            new = np.asarray(sel["rows"], dtype=np.float64)[keep]
            self._say(f"k-means|| round {r}: cost {phi:.6g}, {int(keep.sum())} new candidates")
            if phi == 0 or not keep.any():
                break
            cand_rows.append(new)
            cand_index.append(np.asarray(sel["index"])[keep])
            if r == rounds - 1:
                break
            C2T, e = _terms_t(new, shift, dtype)
            # Pair block i of X with block i of the state (their column counts differ).
            state = da.blockwise(
                _par_update_task, "ij", Xp, "ij", state, "ij", align_arrays=False,
                adjust_chunks={"j": 3}, dtype=dtype, meta=meta_like(Xp, ndim=2), C2T=C2T, e=e,
                first_id=n_cands, name=f"skdml-kmeans-init-update-{tokenize(state, C2T, e)}")
            n_cands += new.shape[0]
        if sparts is None:  # rounds == 0
            sparts = run_step(persist_partitions, Xp, wp, state, name="kmeans-init-state")
        rows = np.concatenate(cand_rows)
        if rows.shape[0] < self.k:
            # Fewer candidates than clusters (few distinct points): add a uniform sample.
            (extra,) = self.sample(self.k, [(_STREAM_SAMPLE, 1000 + run)], weighted=False)
            seen = set(np.concatenate(cand_index).tolist())
            fresh = [i for i, idx in enumerate(np.asarray(extra["index"])) if idx not in seen]
            rows = np.concatenate([rows, np.asarray(extra["rows"], dtype=np.float64)[fresh]])
        last = rows[n_cands:]
        C2T, e = _terms_t(last, shift, dtype) if last.shape[0] else (
            np.zeros((Xp.shape[1], 0), dtype), np.zeros((0,), dtype))

        def weigh():
            partial = map_partitions(_par_weigh_task, sparts, C2T, e, first_id=n_cands,
                                     n_candidates=rows.shape[0], combine=operator.add,
                                     name="kmeans-init-weigh")
            return aggregate(partial, operator.add, name="kmeans-init-weigh")

        weights = np.asarray(run_step(weigh, name="kmeans-init-weigh"), dtype=np.float64)
        sparts.release()
        self._say(f"k-means||: {rows.shape[0]} weighted candidates, reduced to {self.k}")
        return _reduce_candidates(rows, weights, self.k, _client_seed(self.entropy, run))

    # -- Lloyd ---------------------------------------------------------------------------------
    def _pass(self, fn, *args, n_features, **kwargs):
        """Submit one Lloyd pass without waiting: (its tasks, their statistics summed across
        the workers and left there for the next pass, the statistics' size in bytes)."""
        partial = map_partitions(fn, self.parts, *args, combine=_add_or_skip, block=False,
                                 jit=_jit(), name="kmeans-lloyd", **kwargs)
        n_runs = kwargs["n_runs"] if "n_runs" in kwargs else len(kwargs["prev"])
        nbytes = 8 * (n_runs * self.k * (n_features + 2) + 2 * n_features + 8)
        total = allreduce(partial, op=_add_or_skip, nbytes=nbytes, name="kmeans-lloyd")
        return partial, total, nbytes

    @staticmethod
    def _read(lloyd_pass):
        """The summed statistics of a pass, on the client, once its stragglers (if any) have
        backup copies; True with them when a backup copy won."""
        partial, total, nbytes = lloyd_pass
        winners = partial.settle()
        if winners is not partial:  # the same values in the same order: the same bits
            total = allreduce(winners, op=_add_or_skip, nbytes=nbytes, name="kmeans-lloyd")
        return total.result(), winners is not partial

    def _farthest(self, C2, e, centers, n_far):
        combine = functools.partial(K.merge_top, n_keep=n_far, key="dist")

        def step():
            partial = map_partitions(_farthest_task, self.parts, C2, e, centers, n_far=n_far,
                                     offsets=self.offsets, with_index=True, combine=combine,
                                     name="kmeans-relocate")
            return aggregate(partial, combine, name="kmeans-relocate")

        return run_step(step, name="kmeans-relocate")

    def _relocate(self, sums, weights, C2, e, centers):
        """scikit-learn's re-seeding of empty clusters at the farthest points (in place)."""
        empty = np.flatnonzero(weights == 0)
        far = self._farthest(C2, e, centers.astype(self.dtype), len(empty))
        dist = np.asarray(far["dist"])
        if dist.size == 0 or dist.max() == 0:
            return  # fewer distinct points than clusters: nothing to move
        rows = np.asarray(far["rows"], dtype=np.float64)
        for j, new_id in enumerate(empty[:len(dist)]):
            w = float(far["weight"][j])
            old_id = int(far["label"][j])
            sums[old_id] -= rows[j] * w
            sums[new_id] = rows[j] * w
            weights[new_id] = w
            weights[old_id] -= w
        self._say(f"re-seeded {len(empty)} empty cluster(s) at the farthest points")

    def lloyd(self, centers0, *, max_iter, tol, force_iter=False):
        """Lloyd iterations of ``n_runs`` runs in the same passes, with scikit-learn's stopping
        rule: stop when the centers do not move (strict convergence) or when the squared center
        shift is at most ``tol`` times the mean feature variance. Returns (centers, n_iter)."""
        n_runs, k, d = centers0.shape
        centers = np.array(centers0, dtype=np.float64)
        shift = centers.reshape(-1, d).mean(axis=0)
        n_iter = np.zeros(n_runs, dtype=np.int64)
        done = np.zeros(n_runs, dtype=bool)
        bar = LoopProgress(max_iter, "KMeans Lloyd" + (f" ({n_runs} runs)" if n_runs > 1 else ""),
                           self.verbose)
        figures = bool(self.verbose) or bar.shown  # per-iteration inertia wanted
        need_moments = tol > 0 or figures
        try:
            self._iterate(centers, shift, n_iter, done, tol, max_iter, force_iter, need_moments,
                          figures, bar)
        finally:
            bar.close()
        return centers, n_iter

    def _iterate(self, centers, shift, n_iter, done, tol, max_iter, force_iter, need_moments,
                 figures, bar):
        """The loop of :meth:`lloyd`; updates ``centers``, ``n_iter`` and ``done`` in place.

        On a cluster, the passes run as a worker-resident loop (:func:`_resident_lloyd`, one
        task per worker thread for as many passes as the tasks can decide alone), unless the
        ``resident`` setting is off or per-iteration figures are shown. The client then takes
        the last pass's statistics and decides as it does after any pass (an empty cluster to
        re-seed, a run that stops). If a member of the loop dies or stops answering, the
        iterations go on from the centers the client holds, pass by pass:

        each pass goes out before the client reads the one before it: its tasks take that
        pass's statistics (summed by ``allreduce``, on the workers) and compute the next
        centers themselves, as the client does (:func:`_next_centers`), so a pass starts when
        the last one ends, not after a client round trip. When the client's reading differs
        from the tasks' (an empty cluster, a run that stops, a straggler's backup won), the pass
        is dropped (its tasks skip their work) and the next one goes out from the client's
        centers.
        """
        n_runs, k, d = centers.shape
        ex = get_executor()
        # on the threaded scheduler a pass runs when it is read, so one submitted ahead would
        # recompute the pass it builds on
        pipeline = ex.distributed and _PIPELINE
        resident = ex.distributed and bool(_config.get("resident")) and not figures
        flow = {"cur": None, "ahead": None, "tol_abs": 0.0, "const": 0.0}

        def drop(key):
            lloyd_pass, flow[key] = flow[key], None
            if lloyd_pass is not None:
                ex.release_after_next_submit(list(lloyd_pass[0]) + lloyd_pass[1].held())

        def driver_pass(it, active, C2, e, moments):
            """The statistics of pass ``it``, run as tasks of its own."""
            def step():
                if flow["cur"] is None:
                    flow["cur"] = self._pass(
                        _lloyd_task, C2, e, n_runs=len(active), n_features=d,
                        with_inertia=figures,
                        shift=shift.astype(self.dtype) if moments else None)
                if flow["ahead"] is None and pipeline and it + 1 < max_iter:
                    flow["ahead"] = self._pass(
                        _lloyd_next_task, flow["cur"][1], n_features=d,
                        prev=centers[active].copy(), shift=shift, dtype=self.dtype, tol=tol,
                        tol_abs=flow["tol_abs"], first=moments, force_iter=force_iter,
                        with_inertia=figures)
                try:
                    return self._read(flow["cur"])
                except CLUSTER_ERRORS:
                    drop("cur")
                    drop("ahead")
                    raise

            return run_step(step, name="kmeans-lloyd")

        try:
            it = 0
            while it < max_iter:
                active = np.flatnonzero(~done)
                if resident:
                    try:
                        it, used, stats, tol_abs = self._resident(
                            centers[active], shift, start=it, max_iter=max_iter, tol=tol,
                            tol_abs=flow["tol_abs"], need_moments=need_moments,
                            force_iter=force_iter)
                    except ResidentLoopAborted as exc:
                        self._say(f"Resident Lloyd loop ended early ({exc}); going on pass "
                                  "by pass.")
                        resident = False
                        continue
                    centers[active] = used
                    if it > 0:
                        flow["tol_abs"] = tol_abs  # from the loop's first pass
                    straggled = True  # nothing was submitted ahead of this pass
                    moments = need_moments and it == 0
                    C2, e = _terms(centers[active].reshape(-1, d), shift, self.dtype)
                else:
                    C2, e = _terms(centers[active].reshape(-1, d), shift, self.dtype)
                    moments = need_moments and it == 0
                    stats, straggled = driver_pass(it, active, C2, e, moments)
                decided = self._decide(stats, it, active, C2, e, centers, n_iter, done, tol,
                                       moments, force_iter, figures, flow, straggled, bar)
                drop("cur")
                if decided:
                    drop("ahead")
                flow["cur"], flow["ahead"] = flow["ahead"], None
                it += 1
                if done.all():
                    break
        finally:
            drop("cur")
            drop("ahead")

    def _resident(self, prev, shift, *, start, max_iter, tol, tol_abs, need_moments, force_iter):
        """Passes ``start``, ``start + 1``, ... as a worker-resident loop, up to the first
        pass whose next centers the client must decide. Returns (that pass's number, the
        centers it used, its summed statistics, the absolute tolerance)."""
        out = run_resident(self.parts, _resident_lloyd, name="kmeans-lloyd",
                           centers=np.ascontiguousarray(prev, dtype=np.float64), shift=shift,
                           dtype=self.dtype, tol=tol, tol_abs=tol_abs, start=start,
                           max_iter=max_iter, need_moments=need_moments,
                           force_iter=force_iter, jit=_jit())
        it, used, stats, tol_abs = out[0]
        if it > start:
            self._say(f"Iterations {start} to {it - 1} ran resident on the workers.")
        return it, used, stats, tol_abs

    def _decide(self, stats, it, active, C2, e, centers, n_iter, done, tol, moments,
                force_iter, figures, flow, straggled, bar):
        """The client's reading of pass ``it``: new centers, re-seeded empty clusters, runs
        that stop. Returns True when the pass submitted ahead (if any) is not the next one."""
        k, d = centers.shape[1:]
        if moments:
            flow["tol_abs"] = _tol_abs(stats, tol)
            flow["const"] = float(stats["wxx"])
        tol_abs = flow["tol_abs"]
        sums = np.asarray(stats["sums"]).reshape(len(active), k, d)
        weights = np.asarray(stats["weights"]).reshape(len(active), k)
        shown = {}
        decided = straggled  # True: the pass submitted ahead is not the next one
        for j, r in enumerate(active):
            s, w = sums[j].copy(), weights[j].copy()
            if not w.any() and it == 0:
                raise ValueError(
                    "Sample weights must contain at least one non-zero number; got all "
                    "zeros. Give at least one sample a positive weight.")
            if (w == 0).any():
                decided = True
                self._relocate(s, w, C2[j * k:(j + 1) * k], e[j * k:(j + 1) * k], centers[r])
            new = _average(s, w)
            moved = _moved(new, centers[r])
            centers[r] = new
            n_iter[r] = it + 1
            label = f"Run {r}, iteration" if len(centers) > 1 else "Iteration"
            if figures:
                inertia = flow["const"] + float(stats["inertia"][j])
                shown = {"inertia": min(inertia, shown.get("inertia", np.inf)),
                         "shift": max(moved, shown.get("shift", 0.0))}
            if self.verbose:
                print(f"{label} {it}, inertia {inertia:.6g}, center shift {moved:.6g}.")
            if force_iter:
                continue
            if moved == 0:
                done[r] = decided = True
                self._say(f"Converged at iteration {it}: strict convergence.")
            elif moved <= tol_abs:
                done[r] = decided = True
                self._say(f"Converged at iteration {it}: center shift {moved:.6g} "
                          f"within tolerance {tol_abs:.6g}.")
        bar.step(**shown)
        return decided

    def assign(self, centers, *, return_labels):
        """Final E-step: exact inertia and cluster sizes of every run, labels if asked."""
        n_runs, k, d = centers.shape
        final = centers.astype(self.dtype)
        terms = [_predict_terms(final[r], self.dtype) for r in range(n_runs)]
        C2 = np.ascontiguousarray(np.concatenate([t[0] for t in terms], axis=0))
        e = np.concatenate([t[1] for t in terms])

        def step():
            partial = map_partitions(_assign_task, self.parts, C2, e, final.reshape(-1, d),
                                     jit=_jit(),
                                     n_runs=n_runs, return_labels=return_labels,
                                     with_index=True, combine=K.add_stats,
                                     name="kmeans-assign")
            return aggregate(partial, K.add_stats, name="kmeans-assign")

        out = run_step(step, name="kmeans-assign")
        labels = None
        if return_labels:
            labels = np.concatenate([out["labels"][i] for i in range(self.parts.n_partitions)],
                                    axis=1)
        return (np.asarray(out["inertia"], dtype=np.float64),
                np.asarray(out["counts"]).reshape(n_runs, k), labels)


def _reduce_candidates(rows, weights, k, seed):
    """Reduce the weighted k-means|| candidates to ``k`` centers on the client: weighted
    k-means++ then weighted Lloyd, best of ``_REDUCE_N_INIT`` runs (the candidates are few, a
    few times ``k``, so this costs milliseconds)."""
    if not (weights > 0).any():
        weights = np.ones_like(weights)
    positive = weights > 0
    rows, weights = rows[positive], weights[positive]
    if rows.shape[0] <= k:
        pad = k - rows.shape[0]
        return np.concatenate([rows, rows[:1].repeat(pad, axis=0)]) if pad else rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = _SKLearnKMeans(n_clusters=k, init="k-means++", n_init=_REDUCE_N_INIT,
                            random_state=seed)
        km.fit(rows, sample_weight=weights)
    return km.cluster_centers_


# ------------------------------------------------------------------------------------------------
# The estimator
# ------------------------------------------------------------------------------------------------
class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """K-Means clustering on Dask: k-means|| initialisation and Lloyd iterations.

    The data stay on the workers, partitioned by rows; each Lloyd iteration sends the centers
    to every task and brings back, per cluster, the weighted sum of its points and their total
    weight, tree-reduced. Results match :class:`sklearn.cluster.KMeans` (``algorithm="lloyd"``)
    from the same initial centers.

    Read more in :doc:`/user_guide/kmeans`.

    .. versionadded:: 0.1

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters and of centers.
    init : {"k-means||", "k-means++", "random"}, callable or array-like of shape \
            (n_clusters, n_features), default="k-means||"
        How the initial centers are chosen:

        * ``"k-means||"``: scalable k-means++ (Bahmani et al. 2012): ``init_max_iter``
          rounds each sample about ``oversampling_factor * n_clusters`` points with probability
          proportional to their weighted squared distance to the candidates so far; the
          candidates, weighted by the points nearest to them, are reduced to ``n_clusters`` by
          weighted k-means++ and Lloyd on the client.
        * ``"k-means++"``: scikit-learn's greedy k-means++ on a uniform sample of
          ``max(10000, 20 * n_clusters)`` rows (all rows when there are fewer).
        * ``"random"``: ``n_clusters`` distinct rows drawn with probability proportional to
          their weight.
        * an array: the initial centers.
        * a callable ``init(X, n_clusters, random_state=...)`` returning the centers; ``X``
          is the data as passed (a Dask array for Dask input, else a NumPy array).
    n_init : "auto" or int, default="auto"
        Number of runs from different initial centers; the one with the lowest inertia is
        kept. ``"auto"``: 1 for ``"k-means||"``, ``"k-means++"`` and arrays, 10 for
        ``"random"`` and callables. The runs' Lloyd iterations share each pass over the data.
    max_iter : int, default=300
        Maximum number of Lloyd iterations of a run.
    tol : float, default=1e-4
        Relative tolerance: a run stops when the squared shift of its centers, summed over the
        clusters, is at most ``tol`` times the mean variance of the features (or when no center
        moves at all).
    oversampling_factor : float, default=2.0
        k-means|| samples about ``oversampling_factor * n_clusters`` points per round.
    init_max_iter : int, default=None
        Number of k-means|| oversampling rounds; ``None`` means 3.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation. Every draw depends only on the seed and the global row
        index, so a fixed seed gives the same result for any chunking and scheduling.
    algorithm : {"lloyd"}, default="lloyd"
        Only Lloyd's algorithm is implemented.
    copy_x : bool, default=True
        Accepted for compatibility with scikit-learn; the input is never modified.
    verbose : int, default=0
        Print the k-means|| rounds and, per Lloyd iteration, the inertia and the center shift.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centers, in the dtype of the data (float32 stays float32) and on its device
        (CuPy for CuPy data).
    labels_ : ndarray or dask.array.Array of shape (n_samples,)
        The cluster of each sample: a lazy Dask array for Dask input (nothing is computed
        until you ask), else an array like the input (NumPy, xarray).
    inertia_ : float
        Sum of the weighted squared distances of the samples to their closest center.
    n_iter_ : int
        Number of Lloyd iterations of the best run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during ``fit``, when they are all strings.

    See Also
    --------
    sklearn.cluster.KMeans : The in-memory estimator this one mirrors.

    Notes
    -----
    ``fit`` persists the data on the workers once (the first pass, which also checks for
    NaN and infinity), then works in passes over the persisted partitions, each one task per
    worker thread followed by a tree reduction of small results:

    * k-means||: one pass to pick the first center, then per round one pass that updates
      every point's distance to the candidates (kept on the workers) and a light pass that
      returns the sampled points; a last pass weights the candidates.
    * each Lloyd iteration: one GEMM-based pass (the data read once, two small GEMMs per block
      of rows) returning ``n_clusters x n_features`` sums and ``n_clusters`` weights per
      task, tree-reduced; the client computes the new centers and tests convergence.
    * one final pass computes the exact inertia (and the labels for in-memory input).

    The fan-in of the reductions is ``skdml.config`` ``split_every`` (8 by default), set with
    :func:`skdml.config.set`. ``labels_``, ``predict`` and ``transform`` are lazy for Dask
    input. Sparse input is not
    supported (``TypeError``). Empty clusters are re-seeded at the points farthest from their
    centers, as in scikit-learn.

    References
    ----------
    B. Bahmani, B. Moseley, A. Vattani, R. Kumar and S. Vassilvitskii, "Scalable K-Means++",
    Proceedings of the VLDB Endowment 5(7), 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skdml.cluster import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> km.predict([[0, 0], [12, 3]]).tolist() == [km.labels_[0], km.labels_[3]]
    True
    >>> float(km.inertia_)
    16.0
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means||", "k-means++", "random"}), callable, "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "oversampling_factor": [Interval(numbers.Real, 0, None, closed="neither")],
        "init_max_iter": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "algorithm": [StrOptions({"lloyd"})],
        "copy_x": ["boolean"],
        "verbose": [Interval(numbers.Integral, 0, None, closed="left"), "boolean"],
    }

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300, tol=1e-4,
                 oversampling_factor=2.0, init_max_iter=None, random_state=None,
                 algorithm="lloyd", copy_x=True, verbose=0):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter
        self.random_state = random_state
        self.algorithm = algorithm
        self.copy_x = copy_x
        self.verbose = verbose

    # -- validation ----------------------------------------------------------------------------
    def _init_kind(self):
        if isinstance(self.init, str):
            return self.init
        return "callable" if callable(self.init) else "array"

    def _resolve_n_init(self, kind):
        if self.n_init == "auto":
            n_init = 10 if kind in ("random", "callable") else 1
        else:
            n_init = int(self.n_init)
        if kind == "array" and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning, stacklevel=3,
            )
            n_init = 1
        return n_init

    def _check_centers(self, centers, n_features, dtype):
        centers = check_array(centers, dtype=dtype, copy=True, input_name="init")
        if centers.shape[0] != self.n_clusters:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the number "
                f"of clusters {self.n_clusters}.")
        if centers.shape[1] != n_features:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the number "
                f"of features of the data {n_features}.")
        return np.asarray(centers, dtype=np.float64)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: NumPy, pandas, xarray or Dask (NumPy or CuPy chunks). Integers and
            booleans are converted to float64; float32 stays float32. Sparse data raise
            ``TypeError``.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (NumPy, pandas, Dask, ...), used by every initialisation
            except arrays and callables, and by the Lloyd iterations.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        adapted = adapt_X(X, estimator_name=type(self).__name__)
        check_n_features(self, adapted, reset=True)
        sw = adapt_sample_weight(sample_weight, adapted)
        Xd = adapted.X
        n_samples, n_features = Xd.shape
        if n_samples < self.n_clusters:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}.")
        dtype = np.dtype(Xd.dtype)
        kind = self._init_kind()
        n_init = self._resolve_n_init(kind)
        init_centers = self._check_centers(self.init, n_features, dtype) \
            if kind == "array" else None
        entropy = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        # a new name every fit: a persisted array keeps its lazy original's name, so a name
        # derived from Xd could meet an earlier fit's key computed another way (see
        # skdml.linear_model._sgd._aligned)
        layout = Xd.map_blocks(_kernel_layout, jit=_jit(), dtype=Xd.dtype, meta=Xd._meta,
                               name=new_name("kmeans-layout"))
        parts = persist_partitions(layout, sw)
        try:
            driver = _Driver(parts, n_clusters=self.n_clusters, dtype=dtype, entropy=entropy,
                             verbose=self.verbose)
            if kind == "array":
                centers0 = init_centers[None]
            elif kind == "random":
                centers0 = driver.init_random(n_init)
            elif kind == "k-means++":
                centers0 = driver.init_kmeanspp(n_init)
            elif kind == "k-means||":
                rounds = _DEFAULT_INIT_ROUNDS if self.init_max_iter is None \
                    else self.init_max_iter
                centers0 = np.stack([
                    driver.init_kmeans_par(r, self.oversampling_factor, rounds)
                    for r in range(n_init)])
            else:
                data = Xd if adapted.lazy else Xd.compute(scheduler="sync")
                centers0 = np.stack([
                    self._check_centers(
                        to_host(self.init(data, self.n_clusters,
                                          random_state=np.random.RandomState(
                                              _client_seed(entropy, _STREAM_CALLABLE, r)))),
                        n_features, dtype)
                    for r in range(n_init)])
            if self.verbose:
                print("Initialization complete")
            centers, n_iter = driver.lloyd(centers0, max_iter=self.max_iter, tol=self.tol)
            want_labels = not adapted.lazy and n_init == 1
            inertia, counts, labels = driver.assign(centers, return_labels=want_labels)
            # The first run within rounding of the lowest inertia: runs that found the same
            # clustering tie up to rounding, and the pick must not depend on the chunking.
            best = int(np.flatnonzero(inertia <= inertia.min() * (1 + 1e-10))[0])
            if not adapted.lazy and labels is None:
                labels = driver.assign(centers[best:best + 1], return_labels=True)[2]
                best_labels = labels[0]
            elif labels is not None:
                best_labels = labels[best]
        finally:
            parts.release()

        distinct = int((counts[best] > 0).sum())
        if distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning, stacklevel=2,
            )
        self.cluster_centers_ = asarray_like(centers[best].astype(dtype), Xd, dtype=dtype)
        self._n_features_out = self.n_clusters
        self.inertia_ = float(inertia[best])
        self.n_iter_ = int(n_iter[best])
        if adapted.lazy:
            self.labels_ = adapted.wrap(self._lazy_labels(Xd))
        else:
            out = da.from_array(asarray_like(best_labels, Xd, dtype=np.int32),
                                chunks=(Xd.chunks[0],))
            with dask.config.set(scheduler="sync"):  # already in memory: no cluster round trip
                self.labels_ = adapted.wrap(out)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Compute the clusters and return the label of each sample (``labels_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        labels : ndarray or dask.array.Array of shape (n_samples,)
            Lazy for Dask input.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X, y=None, sample_weight=None):
        """Compute the clusters and return the distance of each sample to each center.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        X_new : ndarray or dask.array.Array of shape (n_samples, n_clusters)
            Lazy for Dask input.
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # -- using the fitted model ----------------------------------------------------------------
    def _check_test_data(self, X):
        check_is_fitted(self)
        adapted = adapt_X(X, estimator_name=type(self).__name__)
        check_n_features(self, adapted, reset=False)
        return adapted

    def _lazy_labels(self, Xd):
        C2, e, _ = _predict_terms(self.cluster_centers_, Xd.dtype)
        return Xd.map_blocks(
            _labels_task, C2=C2, e=e, jit=_jit(), dtype=np.int32, drop_axis=1,
            meta=meta_like(Xd, ndim=1, dtype=np.int32),
            name=f"skdml-kmeans-predict-{tokenize(Xd, C2, e)}")

    def predict(self, X):
        """Index of the closest center of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray or dask.array.Array of shape (n_samples,)
            int32; a lazy Dask array for Dask input (nothing is computed).
        """
        adapted = self._check_test_data(X)
        return adapted.wrap(self._lazy_labels(adapted.X))

    def transform(self, X):
        """Distance of each sample to each center.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : ndarray or dask.array.Array of shape (n_samples, n_clusters)
            In the dtype of ``X``; a lazy Dask array for Dask input.
        """
        adapted = self._check_test_data(X)
        Xd = adapted.X
        C2, e, shift = _predict_terms(self.cluster_centers_, Xd.dtype)
        out = Xd.map_blocks(
            _distances_task, C2=C2, e=e, shift=shift, dtype=Xd.dtype,
            chunks=(Xd.chunks[0], (self.n_clusters,)), meta=meta_like(Xd, ndim=2),
            name=f"skdml-kmeans-transform-{tokenize(Xd, C2, e)}")
        return adapted.wrap(out, columns=self.get_feature_names_out(), dim="cluster")

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the inertia of ``X`` for the fitted centers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        score : float or dask.array.Array
            ``-sum_i w_i |x_i - c_i|^2``; a lazy 0-d Dask array for Dask input.
        """
        adapted = self._check_test_data(X)
        Xd = adapted.X
        sw = adapt_sample_weight(sample_weight, adapted)
        C2, e, _ = _predict_terms(self.cluster_centers_, Xd.dtype)
        centers = np.asarray(to_host(self.cluster_centers_), dtype=Xd.dtype)
        arrays = (Xd, "ij") if sw is None else (Xd, "ij", sw, "i")
        per_block = da.blockwise(
            _inertia_task, "i", *arrays, concatenate=True, adjust_chunks={"i": 1},
            C2=C2, e=e, centers=centers, jit=_jit(), dtype=np.float64,
            meta=meta_like(Xd, ndim=1, dtype=np.float64),
            name=f"skdml-kmeans-score-{tokenize(Xd, sw, C2, e)}")
        out = adapted.wrap(-per_block.sum(), kind="scalar")
        return out if adapted.lazy else float(out)
