"""Compiled (Numba) versions of the hot KMeans kernels, for NumPy partitions.

The array-API kernels of :mod:`skdml.cluster._kmeans_kernels` are the reference and the path
for CuPy and every other namespace. On NumPy they spend most of a Lloyd pass outside the
distance GEMM: the per-cluster sums are a second GEMM (a one-hot matrix times the block, as
many flops as the distances), and every block costs a dozen NumPy calls on short axes. Here one
compiled loop per row-chunk does what scikit-learn's Cython Lloyd step does: the distance GEMM
of the chunk through BLAS (``np.dot`` into a reused buffer), then, row by row, the nearest
center (first one on ties), the weighted sum of the row into its cluster and the score into the
inertia. Measured on the development machine (one thread, 1,000,000 x 32, k=16): 40-44 ms
per pass in float64 and 23 ms in float32, against 106-124 ms for the array-API kernel and
55 / 30 ms for scikit-learn's ``lloyd_iter_chunked_dense``.

The functions here take and return what their counterparts in ``_kmeans_kernels`` do, with
the same arithmetic for the scores (``C2 @ x + e`` around a shift, see
:func:`~skdml.cluster._kmeans_kernels.center_terms`), so either path gives the same labels up to
rounding of the GEMM. They apply only to aligned, C-contiguous float32/float64 NumPy
partitions when Numba imports and the ``jit`` setting is on (:func:`usable`); the driver
persists NumPy partitions aligned and row-major for that reason. Their GEMMs are one
row-chunk each (64 KiB of scores), below the size at which OpenBLAS starts its own threads:
measured, two concurrent passes on Dask's threaded scheduler run as fast as one (a 128 KiB
float32 chunk did start BLAS threads and ran 2x slower).
"""
from __future__ import annotations

import numpy as np

from .. import _config

__all__ = ["usable", "lloyd_partial", "assign_partial", "labels_block"]

#: Bytes of the per-chunk score buffer (measured best at 64-128 KiB: it stays in cache).
_CHUNK_BYTES = 64 * 1024


try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, but may lack a wheel
    numba = None


def _njit(fn):
    """Numba's ``njit`` (cached on disk, releasing the GIL), or ``None`` without Numba.

    The kernels are module-level functions: Numba's on-disk cache cannot key closures that call
    other compiled functions, and would recompile them in every worker process."""
    if numba is None:  # pragma: no cover
        return None
    return numba.njit(cache=True, nogil=True)(fn)


@_njit
def scores(X, s, m, C2T, e, G):
    """``X[s:s+m] @ C2T + e`` (the chunk's GEMM through BLAS, into ``G`` when it fits)."""
    if m == G.shape[0]:
        np.dot(X[s:s + m], C2T, G)
        out = G
    else:
        out = np.dot(X[s:s + m], C2T)
    for i in range(m):
        row = out[i]
        for j in range(row.shape[0]):
            row[j] += e[j]
    return out

# The nearest center of a row is found as the minimum of integer keys that order like the
# scores and carry the center's index in their low bits: a branch-free minimum that
# compiles to vector instructions (2-3x faster than a compare-and-branch argmin, whose
# branches the data make unpredictable). The smallest index wins among equal scores.
@_njit
def argmin32(Gi, m, b, k, out):
    """float32 scores (viewed as int32): exact, the index in the low half of an int64."""
    flip = np.int64(0x7FFFFFFF)
    for i in range(m):
        row = Gi[i, b:b + k]  # a 1-D row: its loop vectorizes, a 2-D index does not
        best = np.int64(0x7FFFFFFFFFFFFFFF)
        for j in range(k):
            v = np.int64(row[j])
            key = ((v ^ ((v >> 31) & flip)) << 32) | j
            best = min(best, key)
        out[i] = best & np.int64(0xFFFFFFFF)

@_njit
def argmin64(Gi, m, b, k, bits, out):
    """float64 scores (viewed as int64): the index replaces the ``bits`` lowest mantissa
    bits, so scores within ``2**bits`` units in the last place count as equal."""
    flip = np.int64(0x7FFFFFFFFFFFFFFF)
    mask = (np.int64(1) << bits) - 1
    for i in range(m):
        row = Gi[i, b:b + k]
        best = flip
        for j in range(k):
            v = row[j]
            key = ((v ^ ((v >> 63) & flip)) & ~mask) | j
            best = min(best, key)
        out[i] = best & mask

@_njit
def nearest(G, m, b, k, bits, out):
    """Index (within run ``b // k``) of the nearest center of rows ``0..m-1`` of ``G``."""
    if G.itemsize == 4:
        argmin32(G.view(np.int32), m, b, k, out)
    else:
        argmin64(G.view(np.int64), m, b, k, bits, out)

@_njit
def lloyd(X, w, C2T, e, n_runs, chunk, bits, sums, weights, inertia, shift, s1, s2, s2w):
    """Add a partition's weighted per-cluster sums, weights and score sums into ``sums``,
    ``weights`` and ``inertia`` (float64 outputs; ``w`` empty for unit weights); with a
    non-empty ``shift``, also the moments of :func:`moments`, chunk by chunk while the chunk
    is in cache (no second pass over the data)."""
    n, d = X.shape
    kk = C2T.shape[1]
    k = kk // n_runs
    G = np.empty((min(chunk, max(n, 1)), kk), dtype=X.dtype)
    lab = np.empty(G.shape[0], dtype=np.int64)
    # a chunk's sums in the data's dtype (float32 stays float32 within a chunk, as the
    # array-API kernel's per-block GEMM does), added into the float64 totals after the chunk
    part = np.empty((kk, d), dtype=X.dtype)
    weighted = w.shape[0] > 0
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        Gm = scores(X, s, m, C2T, e, G)
        part[:] = 0
        for r in range(n_runs):
            b = r * k
            nearest(Gm, m, b, k, bits, lab)
            total = 0.0
            for i in range(m):
                c = b + lab[i]
                x = X[s + i]
                acc = part[c]
                if weighted:
                    wi = w[s + i]
                    for f in range(d):
                        acc[f] += wi * x[f]
                    weights[c] += wi
                    total += wi * Gm[i, c]
                else:
                    for f in range(d):
                        acc[f] += x[f]
                    weights[c] += 1.0
                    total += Gm[i, c]
            inertia[r] += total
        if shift.shape[0] > 0:
            moments(X, s, s + m, w, shift, s1, s2, s2w)
        for c in range(kk):
            out = sums[c]
            src = part[c]
            for f in range(d):
                out[f] += src[f]


@_njit
def moments(X, start, stop, w, shift, s1, s2, s2w):
    """Add the per-feature sums and sums of squares of ``X[start:stop] - shift`` into ``s1``
    and ``s2``, and, with weights, the weighted sums of squares into ``s2w``. Per-feature
    accumulators only (no scalar reduction), so the loop vectorises; the weighted sum of the
    rows' squared norms is ``s2w.sum()`` (``s2.sum()`` without weights)."""
    d = X.shape[1]
    weighted = w.shape[0] > 0
    for i in range(start, stop):
        x = X[i]
        if weighted:
            wi = w[i]
            for f in range(d):
                v = x[f] - shift[f]
                s1[f] += v
                s2[f] += v * v
                s2w[f] += wi * (v * v)
        else:
            for f in range(d):
                v = x[f] - shift[f]
                s1[f] += v
                s2[f] += v * v


@_njit
def assign(X, w, C2T, e, n_runs, chunk, bits, exact, centers, labels, inertia, counts):
    """Write every row's nearest center (per run) into ``labels`` and add the rows per center
    into ``counts``; with ``exact``, add the weighted squared distances to ``centers`` into
    ``inertia``."""
    n, d = X.shape
    kk = C2T.shape[1]
    k = kk // n_runs
    G = np.empty((min(chunk, max(n, 1)), kk), dtype=X.dtype)
    lab = np.empty(G.shape[0], dtype=np.int64)
    weighted = w.shape[0] > 0
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        Gm = scores(X, s, m, C2T, e, G)
        for r in range(n_runs):
            b = r * k
            nearest(Gm, m, b, k, bits, lab)
            for i in range(m):
                c = b + lab[i]
                labels[r, s + i] = lab[i]
                counts[c] += 1.0
                if exact:
                    wi = w[s + i] if weighted else 1.0
                    sq = 0.0
                    x = X[s + i]
                    cen = centers[c]
                    for f in range(d):
                        diff = x[f] - cen[f]
                        sq += diff * diff
                    inertia[r] += wi * sq


def _kernels():
    """The compiled kernels, or ``None`` without Numba."""
    if numba is None:  # pragma: no cover
        return None
    return {"lloyd": lloyd, "assign": assign}


def usable(X, jit=None):
    """Whether the compiled kernels apply to the partition ``X``.

    ``jit``: the ``jit`` setting as the client read it (tasks get it as an argument: a setting
    changed on the client does not reach worker processes); ``None`` reads it here.
    """
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and X.flags.c_contiguous
        and X.flags.aligned  # an unaligned block would be one more type to compile for
        and bool(_config.get("jit") if jit is None else jit)
        and _kernels() is not None
    )


def _index_bits(k):
    """Low mantissa bits that carry a center's index in the float64 argmin keys."""
    return max(1, (int(k) - 1).bit_length())


def _chunk_rows(width, itemsize):
    return int(min(4096, max(64, _CHUNK_BYTES // max(1, width * itemsize))))


def _weights(sample_weight, X):
    if sample_weight is None:
        return np.empty((0,), dtype=X.dtype)
    return np.ascontiguousarray(sample_weight, dtype=X.dtype)


def _transposed(C2, X):
    return np.ascontiguousarray(np.asarray(C2, dtype=X.dtype).T)


def lloyd_partial(X, sample_weight, C2, e, *, n_runs=1, with_inertia=False, shift=None):
    """Compiled :func:`skdml.cluster._kmeans_kernels.lloyd_partial` (same inputs and output)."""
    kern = _kernels()
    n, d = X.shape
    kk = C2.shape[0]
    w = _weights(sample_weight, X)
    out = {"sums": np.zeros((kk, d)), "weights": np.zeros((kk,))}
    inertia = np.zeros((n_runs,))
    want_moments = shift is not None
    s1, s2, s2w = np.zeros((d,)), np.zeros((d,)), np.zeros((d,))
    shift_arr = (np.ascontiguousarray(shift, dtype=np.float64) if want_moments
                 else np.zeros((0,)))
    kern["lloyd"](X, w, _transposed(C2, X), np.ascontiguousarray(e, dtype=X.dtype), n_runs,
                  _chunk_rows(kk, X.itemsize), _index_bits(kk // n_runs), out["sums"],
                  out["weights"], inertia, shift_arr, s1, s2, s2w)
    if with_inertia:
        out["inertia"] = inertia
    if want_moments:
        wxx = (s2w if sample_weight is not None else s2).sum()
        out.update(n=np.asarray(float(n)), s1=s1, s2=s2, wxx=np.asarray(wxx))
    return out


def _assign(X, sample_weight, C2, e, centers, n_runs):
    """Labels, exact inertia (when ``centers`` is given) and counts of every run."""
    n = X.shape[0]
    kk = C2.shape[0]
    labels = np.empty((n_runs, n), dtype=np.int32)
    inertia = np.zeros((n_runs,))
    counts = np.zeros((kk,))
    exact = centers is not None
    centers = (np.ascontiguousarray(centers, dtype=X.dtype) if exact
               else np.zeros((1, 1), dtype=X.dtype))
    _kernels()["assign"](X, _weights(sample_weight, X), _transposed(C2, X),
                         np.ascontiguousarray(e, dtype=X.dtype), n_runs,
                         _chunk_rows(kk, X.itemsize), _index_bits(kk // n_runs), exact,
                         centers, labels, inertia, counts)
    return labels, inertia, counts


def assign_partial(X, sample_weight, C2, e, centers, *, n_runs=1, return_labels=False):
    """Compiled :func:`skdml.cluster._kmeans_kernels.assign_partial` (same inputs and output)."""
    labels, inertia, counts = _assign(X, sample_weight, C2, e, centers, n_runs)
    out = {"inertia": inertia, "counts": counts}
    if return_labels:
        out["labels"] = labels
    return out


def labels_block(X, C2, e):
    """Compiled :func:`skdml.cluster._kmeans_kernels.labels_block`."""
    return _assign(X, None, C2, e, None, 1)[0][0]
