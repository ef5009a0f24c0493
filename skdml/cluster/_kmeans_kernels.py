"""Per-partition kernels of :class:`skdml.cluster.KMeans`.

Every function here is pure array-API code on one row-partition: it takes arrays of one library
(NumPy, CuPy or ``array_api_strict``) and that library's namespace ``xp``, returns new small
arrays, imports no Dask, draws no random numbers (uniform draws are passed in) and changes none
of its inputs. The driver in :mod:`skdml.cluster._kmeans` maps them over persisted partitions
with :func:`skdml.parallel.map_partitions` and combines their results with the ``combine``
functions at the bottom of this module (all associative and commutative, so any tree gives the
same answer up to rounding).

Distances use one GEMM per row-block, never an ``n x k x d`` temporary. With a shift vector
``s`` (a point near the data, e.g. the mean of the centers) and ``c' = c - s``::

    |x - c|^2 = |x - s|^2 + score(x, c),   score(x, c) = e_c - 2 x . c'
    e_c = |c'|^2 + 2 s . c'

so the nearest center is the argmin of ``score``, computed as ``C2 @ X_block^T + e`` with
``C2 = -2 C'`` (see :func:`center_terms`). Rounding is relative to the data's spread around
``s`` rather than to its distance from the origin, as with scikit-learn's centering of ``X``,
without a centred copy of the data. Exact inertias use the direct difference ``x - c``.

Rows are processed in blocks whose temporaries stay below about 120 KiB: Dask's Nanny starts
workers with ``MALLOC_TRIM_THRESHOLD_`` set, which turns off glibc's adaptive mmap threshold, so
every temporary above 128 KiB would be a fresh ``mmap`` whose pages fault in each time
(measured: 2-3x slower Lloyd passes). Partial sums are accumulated in float64 whatever the data
dtype, so float32 data keep float32 GEMMs but lose nothing in the sums.
"""
from __future__ import annotations

__all__ = [
    "block_rows",
    "center_terms",
    "lloyd_partial",
    "assign_partial",
    "labels_block",
    "distances_block",
    "inertia_block",
    "farthest_partial",
    "sample_partial",
    "par_first",
    "par_update",
    "par_select",
    "par_weigh",
    "add_stats",
    "merge_top",
    "merge_selected",
]

#: Bytes of temporaries per row-block (below glibc's 128 KiB default mmap threshold).
TEMP_BYTES = 120 * 1024
MIN_ROWS = 256
MAX_ROWS = 16384


def block_rows(width, itemsize, *, budget=TEMP_BYTES, minimum=MIN_ROWS, maximum=MAX_ROWS):
    """Rows per block so that a ``rows x width`` temporary stays within ``budget`` bytes.

    Parameters
    ----------
    width : int
        Columns of the widest temporary (e.g. the number of centers).
    itemsize : int
        Bytes per element.

    Returns
    -------
    int
        Between ``minimum`` and ``maximum``.
    """
    rows = budget // max(1, int(width) * int(itemsize))
    return int(min(maximum, max(minimum, rows)))


def _blocks(n, rows):
    return [(start, min(n, start + rows)) for start in range(0, n, rows)]


def _itemsize(xp, dtype):
    return 4 if dtype == xp.float32 else 8


def center_terms(centers, shift, *, xp):
    """The per-center terms of the shifted GEMM distance.

    Parameters
    ----------
    centers : array of shape (n_centers, n_features)
    shift : array of shape (n_features,)
        The point ``s`` distances are measured around.

    Returns
    -------
    C2 : array of shape (n_centers, n_features)
        ``-2 (centers - shift)``.
    e : array of shape (n_centers,)
        ``|c - s|^2 + 2 s . (c - s)`` for each center ``c``.
    """
    cs = centers - shift
    e = xp.sum(cs * cs, axis=1) + 2 * (cs @ shift)
    return -2 * cs, e


def _rowsum(A, xp):
    """Sum of each row of a 2-D array, as a matrix-vector product (much faster than a reduction
    along a short last axis)."""
    return A @ xp.ones((A.shape[1],), dtype=A.dtype, device=A.device)


def _gather_rows(X, idx, xp):
    """``X[idx, :]`` by integer-array indexing on both axes: NumPy's ``take`` along axis 0
    first copies a column-major array whole, this does not."""
    rows = xp.reshape(xp.astype(idx, xp.int64), (idx.shape[0], 1))
    cols = xp.reshape(xp.arange(X.shape[1], dtype=xp.int64, device=X.device), (1, X.shape[1]))
    return X[rows, cols]


def _scores(B, C2T, e):
    """``score`` of every row of ``B`` against every center, ``(rows, k)`` (k-means|| passes)."""
    G = B @ C2T
    G += e
    return G


def _nearest(B, C2, e_col, n_runs, xp):
    """Nearest center of every row of ``B``, per run, as a transposed one-hot.

    The scores are computed transposed, ``C2 @ B^T + e`` of shape ``(n_runs * k, rows)``, so
    that the reductions over the centers run along the long, contiguous row axis (several
    times faster than an argmin along a short last axis). The one-hot is ``score == min``;
    where two centers tie exactly, the block falls back to ``argmin`` so that, as everywhere
    else, the first center wins.

    Returns
    -------
    hot : array of shape (n_runs * k, rows), B's dtype
        One-hot of the nearest center of each row (a single 1 per row and run).
    counts : array of shape (n_runs, k), B's dtype
        Rows per center (exact integers).
    best : array of shape (n_runs, 1, rows)
        The smallest score of each row.
    """
    m = B.shape[0]
    kk = C2.shape[0]
    k = kk // n_runs
    S = C2 @ xp.permute_dims(B, (1, 0))
    S += e_col
    if n_runs == 1:  # plain 2-D reductions: measured 25% faster than the 3-D ones for float64
        best = xp.min(S, axis=0)
        hot = xp.astype(S == best, B.dtype)
        counts = xp.sum(hot, axis=1)
        if bool(xp.sum(counts) != m):  # an exact tie somewhere: first one wins
            ids = xp.reshape(xp.arange(k, device=B.device), (k, 1))
            hot = xp.astype(ids == xp.argmin(S, axis=0), B.dtype)
            counts = xp.sum(hot, axis=1)
        return hot, xp.reshape(counts, (1, k)), xp.reshape(best, (1, 1, m))
    S3 = xp.reshape(S, (n_runs, k, m))
    best = xp.min(S3, axis=1, keepdims=True)
    hot = xp.astype(S3 == best, B.dtype)
    counts = xp.sum(hot, axis=2)
    if bool(xp.any(xp.sum(counts, axis=1) != m)):  # an exact tie somewhere: first one wins
        ids = xp.reshape(xp.arange(k, device=B.device), (1, k, 1))
        first = xp.reshape(xp.argmin(S3, axis=1), (n_runs, 1, m))
        hot = xp.astype(ids == first, B.dtype)
        counts = xp.sum(hot, axis=2)
    return xp.reshape(hot, (kk, m)), counts, best


def _labels_from_hot(hot, n_runs, xp):
    """Labels ``(n_runs, rows)`` int64 of a one-hot ``(n_runs * k, rows)``."""
    kk, m = hot.shape
    k = kk // n_runs
    ids = xp.reshape(xp.arange(k, dtype=hot.dtype, device=hot.device), (1, 1, k))
    lab = ids @ xp.reshape(hot, (n_runs, k, m))
    return xp.astype(xp.reshape(lab, (n_runs, m)), xp.int64)


def lloyd_partial(X, sample_weight, C2, e, *, n_runs=1, with_inertia=False, shift=None, xp):
    """One Lloyd E-step on a partition, reduced to the M-step's sufficient statistics.

    Parameters
    ----------
    X : array of shape (n, d)
        The partition. Any memory layout; column-major (Fortran) blocks are fastest, because
        ``X_block^T`` is then contiguous for the GEMM.
    sample_weight : array of shape (n,) or None
        Weights (``None``: all ones).
    C2, e : arrays
        :func:`center_terms` of the centers of ``n_runs`` runs stacked
        (``n_runs * k`` centers, run by run), in ``X``'s dtype.
    n_runs : int, default=1
        Independent k-means runs evaluated in the same pass (``n_init``).
    with_inertia : bool, default=False
        Also return ``sum_i w_i min_c score(x_i, c)`` per run (the inertia minus the constant
        ``sum_i w_i |x_i - s|^2``; used for verbose output).
    shift : array of shape (d,) or None
        When given, also return the moments of ``X - shift`` (for the tolerance and the
        inertia constant): ``n``, ``s1`` (per-feature sums), ``s2`` (per-feature sums of
        squares, unweighted) and ``wxx`` (``sum_i w_i |x_i - shift|^2``).

    Returns
    -------
    dict
        ``sums`` (n_runs * k, d) weighted sums of the rows nearest to each center and
        ``weights`` (n_runs * k,) their total weight, both float64; plus ``inertia`` and the
        moments when asked.
    """
    n, d = X.shape
    kk = C2.shape[0]
    dev = X.device
    f64 = xp.float64
    e_col = xp.reshape(e, (kk, 1))
    out = {"sums": xp.zeros((kk, d), dtype=f64, device=dev),
           "weights": xp.zeros((kk,), dtype=f64, device=dev)}
    if with_inertia:
        out["inertia"] = xp.zeros((n_runs,), dtype=f64, device=dev)
    if shift is not None:
        out.update(n=xp.asarray(float(n), dtype=f64, device=dev),
                   s1=xp.zeros((d,), dtype=f64, device=dev),
                   s2=xp.zeros((d,), dtype=f64, device=dev),
                   wxx=xp.asarray(0.0, dtype=f64, device=dev))
    width = max(kk, d) if shift is not None else kk
    for start, stop in _blocks(n, block_rows(width, _itemsize(xp, X.dtype))):
        B = X[start:stop, :]
        hot, counts, best = _nearest(B, C2, e_col, n_runs, xp)
        if sample_weight is None:
            weights = xp.reshape(counts, (kk,))
        else:
            wb = sample_weight[start:stop]
            hot *= wb
            weights = xp.sum(hot, axis=1)
        out["sums"] += xp.astype(hot @ B, f64, copy=False)
        out["weights"] += xp.astype(weights, f64, copy=False)
        if with_inertia:
            b = xp.reshape(best, (n_runs, stop - start))
            total = xp.sum(b, axis=1) if sample_weight is None else b @ wb
            out["inertia"] += xp.astype(total, f64)
        if shift is not None:
            Bs = B - shift
            sq = Bs * Bs
            out["s1"] += xp.astype(xp.sum(Bs, axis=0), f64)
            out["s2"] += xp.astype(xp.sum(sq, axis=0), f64)
            total = xp.sum(sq) if sample_weight is None else xp.sum(wb @ sq)
            out["wxx"] += xp.astype(total, f64)
    return out


def assign_partial(X, sample_weight, C2, e, centers, *, n_runs=1, return_labels=False, xp):
    """Final E-step of a partition: exact inertia, cluster sizes and (optionally) labels.

    Labels are those of :func:`labels_block` and of the Lloyd passes (same arithmetic); the
    inertia is ``sum_i w_i |x_i - c_{label_i}|^2`` by direct difference.

    Parameters
    ----------
    X, sample_weight, C2, e, n_runs
        As in :func:`lloyd_partial`.
    centers : array of shape (n_runs * k, d)
        The centers themselves (for the exact inertia).
    return_labels : bool, default=False
        Also return the labels, ``(n_runs, n)`` int32.

    Returns
    -------
    dict
        ``inertia`` (n_runs,) float64, ``counts`` (n_runs * k,) float64 (unweighted number of
        rows per center) and ``labels`` when asked.
    """
    n, d = X.shape
    kk = C2.shape[0]
    k = kk // n_runs
    dev = X.device
    f64 = xp.float64
    e_col = xp.reshape(e, (kk, 1))
    inertia = xp.zeros((n_runs,), dtype=f64, device=dev)
    counts = xp.zeros((kk,), dtype=f64, device=dev)
    parts = []
    for start, stop in _blocks(n, block_rows(max(kk, d), _itemsize(xp, X.dtype))):
        B = X[start:stop, :]
        hot, cnt, _ = _nearest(B, C2, e_col, n_runs, xp)
        labels = _labels_from_hot(hot, n_runs, xp)
        counts += xp.astype(xp.reshape(cnt, (kk,)), f64)
        per_run = []
        for r in range(n_runs):
            diff = B - xp.take(centers[r * k:(r + 1) * k, :], labels[r, :], axis=0)
            sq = diff * diff
            total = xp.sum(sq) if sample_weight is None else \
                xp.sum(sample_weight[start:stop] @ sq)
            per_run.append(xp.astype(total, f64))
        inertia += xp.stack(per_run)
        if return_labels:
            parts.append(xp.astype(labels, xp.int32))
    out = {"inertia": inertia, "counts": counts}
    if return_labels:
        out["labels"] = xp.concat(parts, axis=1) if parts else \
            xp.zeros((n_runs, 0), dtype=xp.int32, device=dev)
    return out


def labels_block(X, C2, e, *, xp):
    """Index of the nearest center of each row (first one on ties), int32 of shape (n,)."""
    n = X.shape[0]
    if n == 0:
        return xp.zeros((0,), dtype=xp.int32, device=X.device)
    e_col = xp.reshape(e, (C2.shape[0], 1))
    parts = []
    # the same row-blocks as assign_partial, so that labels_ agrees with the fit's final E-step
    for start, stop in _blocks(n, block_rows(max(C2.shape[0], X.shape[1]),
                                             _itemsize(xp, X.dtype))):
        hot, _, _ = _nearest(X[start:stop, :], C2, e_col, 1, xp)
        parts.append(xp.astype(_labels_from_hot(hot, 1, xp)[0, :], xp.int32))
    return xp.concat(parts)


def distances_block(X, C2, e, shift, *, xp):
    """Euclidean distance of each row to each center, ``(n, k)`` of ``X.dtype``.

    ``|x - c|^2 = |x - s|^2 + score(x, c)``, clipped at 0 before the square root.
    """
    n = X.shape[0]
    k = C2.shape[0]
    if n == 0:
        return xp.zeros((0, k), dtype=X.dtype, device=X.device)
    C2T = xp.permute_dims(C2, (1, 0))
    parts = []
    for start, stop in _blocks(n, block_rows(max(k, X.shape[1]), _itemsize(xp, X.dtype))):
        B = X[start:stop, :]
        Bs = B - shift
        G = _scores(B, C2T, e)
        G += xp.reshape(_rowsum(Bs * Bs, xp), (stop - start, 1))
        G[G < 0] = 0  # rounding
        parts.append(xp.sqrt(G))
    return xp.concat(parts, axis=0)


def inertia_block(X, sample_weight, C2, e, centers, *, xp):
    """``sum_i w_i |x_i - c_{label_i}|^2`` of a block as a float64 array of shape (1,)."""
    if X.shape[0] == 0:
        return xp.zeros((1,), dtype=xp.float64, device=X.device)
    out = assign_partial(X, sample_weight, C2, e, centers, n_runs=1, xp=xp)
    return out["inertia"]


def farthest_partial(X, sample_weight, C2, e, centers, n_far, row_offset, *, xp):
    """The ``n_far`` rows farthest from their nearest center (for re-seeding empty clusters).

    Distances are exact (direct difference), labels those of :func:`labels_block`. Ties in
    distance are broken by the global row index (``row_offset`` + position), smallest first,
    so the choice does not depend on the partitioning.

    Returns
    -------
    dict
        ``dist`` (m,) float64, ``rows`` (m, d), ``weight`` (m,) float64, ``label`` (m,) int64 and
        ``index`` (m,) int64 global row indices, sorted by decreasing distance, ``m <= n_far``.
    """
    n, d = X.shape
    k = C2.shape[0]
    e_col = xp.reshape(e, (k, 1))
    dists, labs = [], []
    for start, stop in _blocks(n, block_rows(max(k, d), _itemsize(xp, X.dtype))):
        B = X[start:stop, :]
        hot, _, _ = _nearest(B, C2, e_col, 1, xp)
        labels = _labels_from_hot(hot, 1, xp)[0, :]
        diff = B - xp.take(centers, labels, axis=0)
        dists.append(xp.astype(_rowsum(diff * diff, xp), xp.float64))
        labs.append(labels)
    dist = xp.concat(dists)
    order = _top(dist, n_far, xp)
    weight = (xp.ones((n,), dtype=xp.float64, device=X.device) if sample_weight is None
              else xp.astype(sample_weight, xp.float64))
    index = xp.arange(n, dtype=xp.int64, device=X.device) + row_offset
    return {
        "dist": xp.take(dist, order),
        "rows": _gather_rows(X, order, xp),
        "weight": xp.take(weight, order),
        "label": xp.astype(xp.take(xp.concat(labs), order), xp.int64),
        "index": xp.take(index, order),
    }


def _top(values, n_top, xp):
    """Indices of the ``n_top`` largest values, largest first, the smallest index first among
    equal values (like a stable descending sort), without sorting everything when ``n_top``
    is small."""
    n = values.shape[0]
    n_top = min(int(n_top), n)
    if n_top > 16:
        return xp.argsort(-values, stable=True)[:n_top]
    work = xp.asarray(values, copy=True)
    out = []
    for _ in range(n_top):
        i = int(xp.argmax(work))  # the first maximum
        out.append(i)
        work[i] = -float("inf")
    return xp.asarray(out, dtype=xp.int64, device=values.device)


def sample_partial(X, sample_weight, u, n_keep, row_offset, *, weighted, xp):
    """A sample without replacement of ``n_keep`` rows, as top keys (Efraimidis-Spirakis).

    Row ``i`` gets the key ``log(u_i) / w_i`` when ``weighted`` (``-inf`` for ``w_i = 0``),
    else ``log(u_i)``; the rows with the largest keys form a sample drawn successively with
    probability proportional to the weights (or uniformly). With ``u`` drawn per global row,
    the sample does not depend on the partitioning.

    Parameters
    ----------
    u : array of shape (n,)
        Uniform draws in (0, 1], float64.
    n_keep : int
        Sample size (per partition; merged by :func:`merge_top`).

    Returns
    -------
    dict
        ``key`` (m,) float64, ``rows`` (m, d), ``weight`` (m,) float64 and ``index`` (m,)
        int64, ``m = min(n, n_keep)``, sorted by decreasing key then increasing index.
    """
    n = X.shape[0]
    weight = (xp.ones((n,), dtype=xp.float64, device=X.device) if sample_weight is None
              else xp.astype(sample_weight, xp.float64))
    key = xp.log(u)
    if weighted:
        positive = weight > 0
        safe = xp.where(positive, weight, xp.ones_like(weight))
        key = xp.where(positive, key / safe, xp.full_like(key, -float("inf")))
    order = _top(key, n_keep, xp)
    index = xp.arange(n, dtype=xp.int64, device=X.device) + row_offset
    return {
        "key": xp.take(key, order),
        "rows": _gather_rows(X, order, xp),
        "weight": xp.take(weight, order),
        "index": xp.take(index, order),
    }


# ---- k-means|| ---------------------------------------------------------------------------------
# The per-row state of the oversampling rounds is an (n, 3) array of X's dtype: squared distance
# to the nearest candidate so far, that candidate's id, and |x - s|^2 (s = the first candidate).
def par_first(X, first, *, xp):
    """Initial k-means|| state: every row's squared distance to the first candidate ``first``."""
    n, d = X.shape
    cols = []
    for start, stop in _blocks(n, block_rows(d, _itemsize(xp, X.dtype))):
        diff = X[start:stop, :] - first
        cols.append(_rowsum(diff * diff, xp))
    xx = xp.concat(cols) if cols else xp.zeros((0,), dtype=X.dtype, device=X.device)
    return xp.stack([xx, xp.zeros_like(xx), xx], axis=1)


def _par_nearest(B, xx, C2T, e, xp):
    """Squared distance to, and index of, the nearest of the new candidates (first on ties).

    Row-major scores ``B @ C2T + e``: with a few dozen candidates and no one-hot needed, one
    argmin along the rows is cheaper than the transposed reductions of :func:`_nearest`.
    """
    G = _scores(B, C2T, e)
    idx = xp.argmin(G, axis=1)
    m, width = G.shape
    flat = idx + xp.arange(m, dtype=idx.dtype, device=G.device) * width
    dist = xp.take(xp.reshape(G, (m * width,)), flat) + xx
    dist[dist < 0] = 0  # rounding
    return dist, idx


def par_update(X, state, C2T, e, first_id, *, xp):
    """k-means|| state after adding candidates (``C2T``, ``e`` around the first candidate).

    ``C2T`` is the transpose of :func:`center_terms`'s ``C2``, shape ``(n_features, l)``.
    Candidates get the ids ``first_id, first_id + 1, ...``. Returns a new (n, 3) state.
    """
    n = X.shape[0]
    if n == 0:
        return state
    d2_parts, id_parts = [], []
    for start, stop in _blocks(n, block_rows(C2T.shape[1], _itemsize(xp, X.dtype))):
        xx = state[start:stop, 2]
        dist, idx = _par_nearest(X[start:stop, :], xx, C2T, e, xp)
        old = state[start:stop, 0]
        closer = dist < old
        d2_parts.append(xp.where(closer, dist, old))
        id_parts.append(xp.where(closer, xp.astype(idx + first_id, X.dtype),
                                 state[start:stop, 1]))
    return xp.stack([xp.concat(d2_parts), xp.concat(id_parts), state[:, 2]], axis=1)


def par_select(X, sample_weight, state, u, oversampling, row_offset, *, xp):
    """Rows that k-means|| may sample this round, from a partition's share of the cost.

    Row ``i`` is sampled when ``l w_i d2_i > u_i phi`` (probability ``min(1, l w_i d2_i /
    phi)``), with ``phi`` the total cost over all partitions. ``phi`` is not known here, but it
    is at least this partition's ``phi_p``, so the rows with ``l w_i d2_i > u_i phi_p`` (about
    ``l`` of them at most, in expectation) include every row that will be sampled; the driver
    keeps those that pass with the total ``phi``.

    Returns
    -------
    dict
        ``phi`` (float64 scalar array: this partition's cost), and for the candidate rows:
        ``rows`` (m, d), ``weight``, ``d2``, ``u`` (m,) float64 and ``index`` (m,) int64.
    """
    n = X.shape[0]
    d2 = xp.astype(state[:, 0], xp.float64)
    weight = (xp.ones((n,), dtype=xp.float64, device=X.device) if sample_weight is None
              else xp.astype(sample_weight, xp.float64))
    wd2 = weight * d2
    phi = xp.sum(wd2)
    keep = oversampling * wd2 > u * phi
    (pos,) = xp.nonzero(keep)
    index = xp.arange(n, dtype=xp.int64, device=X.device) + row_offset
    return {
        "phi": phi,
        "rows": _gather_rows(X, pos, xp),
        "weight": xp.take(weight, pos),
        "d2": xp.take(d2, pos),
        "u": xp.take(u, pos),
        "index": xp.take(index, pos),
    }


def par_weigh(X, sample_weight, state, C2T, e, first_id, n_candidates, *, xp):
    """Total weight of the rows nearest to each candidate, after adding the last ones.

    Returns
    -------
    array of shape (n_candidates,), float64
    """
    n = X.shape[0]
    dev = X.device
    owner = xp.astype(state[:, 1], xp.int64)
    if C2T.shape[1] and n:
        parts = []
        for start, stop in _blocks(n, block_rows(C2T.shape[1], _itemsize(xp, X.dtype))):
            dist, idx = _par_nearest(X[start:stop, :], state[start:stop, 2], C2T, e, xp)
            parts.append(xp.where(dist < state[start:stop, 0], idx + first_id,
                                  owner[start:stop]))
        owner = xp.concat(parts)
    # Per-candidate sums without a (candidates x rows) one-hot: sort the owners, then take
    # differences of the cumulative weight at each candidate's first row.
    order = xp.argsort(owner, stable=True)
    weight = (xp.ones((n,), dtype=xp.float64, device=dev) if sample_weight is None
              else xp.astype(xp.take(sample_weight, order), xp.float64))
    cum = xp.cumulative_sum(weight, include_initial=True)
    bounds = xp.searchsorted(xp.take(owner, order),
                             xp.arange(n_candidates + 1, dtype=xp.int64, device=dev))
    return xp.take(cum, bounds[1:]) - xp.take(cum, bounds[:-1])


# ---- combine functions (associative and commutative) --------------------------------------------
def add_stats(a, b):
    """Add two dicts of partial sums leaf by leaf (nested dicts are merged key by key)."""
    out = {}
    for key in a:
        va, vb = a[key], b[key]
        if isinstance(va, dict):
            out[key] = {**va, **vb}
        else:
            out[key] = va + vb
    return out


def _namespace(a):
    from .._backend import get_namespace

    return get_namespace(a)


def _concat_fields(a, b, fields, xp):
    return {f: xp.concat([a[f], b[f]], axis=0) for f in fields}


def _order_desc(primary, index, xp):
    """Order by decreasing ``primary``, then increasing ``index`` (a canonical order)."""
    by_index = xp.argsort(index, stable=True)
    by_key = xp.argsort(-xp.take(primary, by_index), stable=True)
    return xp.take(by_index, by_key)


def merge_top(a, b, *, n_keep, key="key"):
    """Merge two top-``n_keep`` results (``sample_partial`` / ``farthest_partial``) into one."""
    xp = _namespace(a["index"])
    fields = list(a)
    both = _concat_fields(a, b, fields, xp)
    order = _order_desc(both[key], both["index"], xp)[:n_keep]
    return {f: xp.take(both[f], order, axis=0) for f in fields}


def merge_selected(a, b):
    """Merge two :func:`par_select` results: costs add, candidate rows are kept in index order."""
    xp = _namespace(a["index"])
    fields = [f for f in a if f != "phi"]
    both = _concat_fields(a, b, fields, xp)
    order = xp.argsort(both["index"], stable=True)
    out = {f: xp.take(both[f], order, axis=0) for f in fields}
    out["phi"] = a["phi"] + b["phi"]
    return out
