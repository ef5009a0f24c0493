"""Lazy, chunk-by-chunk versions of scikit-learn's sample generators."""
from __future__ import annotations

import numbers
from functools import partial

import numpy as np
from dask.base import tokenize

from ._common import (
    assemble,
    check_array_type,
    check_dtype,
    check_int,
    check_real,
    chunk_rng,
    empty_meta,
    model_rng,
    resolve_entropy,
    row_chunks,
)

__all__ = ["make_blobs", "make_classification", "make_regression"]


# --------------------------------------------------------------------------------------------
# make_blobs
# --------------------------------------------------------------------------------------------
def _blobs_model(entropy, centers, n_centers, n_features, center_box, cluster_std):
    if centers is None:
        centers = model_rng(entropy).uniform(
            center_box[0], center_box[1], size=(n_centers, n_features)
        )
    std = np.broadcast_to(np.asarray(cluster_std, dtype=np.float64), (n_centers,))
    return {"centers": np.asarray(centers, dtype=np.float64), "std": np.array(std)}


def _blobs_chunk(model, index, start, stop, *, entropy, dtype):
    rng = chunk_rng(entropy, index)
    centers, std = model["centers"], model["std"]
    m = stop - start
    # Labels cycle through the centers by global row index, so the whole dataset has
    # n_samples // n_centers points per center (the first ones get the remainder), as in
    # scikit-learn; the order inside a chunk is shuffled.
    y = rng.permutation((start + np.arange(m, dtype=np.int64)) % len(centers))
    X = rng.standard_normal((m, centers.shape[1]))
    X *= std[y, None]
    X += centers[y]
    return X.astype(dtype, copy=False), y


def make_blobs(n_samples=100, n_features=2, *, centers=None, cluster_std=1.0,
               center_box=(-10.0, 10.0), chunks=None, random_state=None, dtype=np.float64,
               return_centers=False, array_type="numpy"):
    """Generate isotropic Gaussian blobs for clustering, lazily and chunk by chunk.

    Each chunk of rows is drawn by its own task from a seed derived from ``random_state`` and
    the chunk index, so datasets far larger than one machine's memory can be generated where
    they are used.

    Parameters
    ----------
    n_samples : int, default=100
        Total number of points, shared equally among the centers (the first centers get one
        more point when it does not divide).
    n_features : int, default=2
        Number of features. Ignored when ``centers`` is an array (its columns count).
    centers : int or array-like of shape (n_centers, n_features), default=None
        Number of centers to draw uniformly in ``center_box``, or their fixed locations.
        ``None`` means 3 centers.
    cluster_std : float or array-like of shape (n_centers,), default=1.0
        Standard deviation of each cluster.
    center_box : tuple of float (min, max), default=(-10.0, 10.0)
        Bounding box of the random centers.
    chunks : int or tuple of int, default=None
        Rows per chunk (an int; the last chunk takes the rest) or the size of each chunk.
        ``None`` fits each chunk in Dask's ``array.chunk-size`` (128 MiB), so small data sets
        are one chunk.
    random_state : int, RandomState or Generator, default=None
        Seed of the whole dataset. The values depend on it and on the chunking.
    dtype : {np.float64, np.float32}, default=np.float64
        dtype of ``X``.
    return_centers : bool, default=False
        Also return the centers.
    array_type : {"numpy", "cupy"}, default="numpy"
        Chunk type of ``X`` and ``y``. ``"cupy"`` needs the GPU extra (``skdml[gpu]``).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        The points, chunked by rows.
    y : dask.array.Array of shape (n_samples,)
        The cluster of each point (int64), chunked like ``X``.
    centers : ndarray of shape (n_centers, n_features)
        The centers (float64 NumPy array). Only when ``return_centers=True``.

    See Also
    --------
    sklearn.datasets.make_blobs : The in-memory counterpart.
    make_classification : A harder, multi-cluster classification problem.

    Notes
    -----
    Building the arrays computes nothing: one task draws the centers and one task per chunk
    draws its points (tasks ``skdml-make-blobs-*``). Random centers are drawn once; with
    ``return_centers=True`` the client draws the same centers to return them.

    Examples
    --------
    >>> from skdml.datasets import make_blobs
    >>> X, y = make_blobs(n_samples=1000, centers=4, chunks=250, random_state=0)
    >>> X  # doctest: +ELLIPSIS
    dask.array<skdml-make-blobs-X, shape=(1000, 2), dtype=float64, chunksize=(250, 2), ...>
    >>> X.numblocks
    (4, 1)
    >>> import numpy as np
    >>> np.bincount(y.compute())
    array([250, 250, 250, 250])
    """
    n_samples = check_int(n_samples, "n_samples")
    dtype = check_dtype(dtype)
    array_type = check_array_type(array_type)
    if centers is None:
        centers = 3
    if isinstance(centers, numbers.Integral) and not isinstance(centers, (bool, np.bool_)):
        n_centers = check_int(centers, "centers")
        n_features = check_int(n_features, "n_features")
        fixed = None
        if len(center_box) != 2:
            raise ValueError(f"center_box must be a pair (min, max); got {center_box!r}.")
        center_box = (check_real(center_box[0], "center_box[0]"),
                      check_real(center_box[1], "center_box[1]"))
    else:
        try:
            fixed = np.array(centers, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"centers must be an int or an array of shape (n_centers, n_features); "
                f"got {centers!r}."
            ) from exc
        if fixed.ndim != 2 or fixed.shape[0] < 1 or fixed.shape[1] < 1:
            raise ValueError(
                "centers must be an int or a non-empty array of shape (n_centers, n_features); "
                f"got an array of shape {fixed.shape}."
            )
        if not np.all(np.isfinite(fixed)):
            raise ValueError("centers must contain only finite values.")
        n_centers, n_features = fixed.shape
    std = np.asarray(cluster_std, dtype=np.float64)
    if std.ndim > 1 or (std.ndim == 1 and std.shape[0] != n_centers):
        raise ValueError(
            f"cluster_std must be a float or have one value per center ({n_centers}); "
            f"got shape {std.shape}."
        )
    if not np.all(np.isfinite(std)) or np.any(std < 0):
        raise ValueError(f"cluster_std must be finite and >= 0; got {cluster_std!r}.")

    entropy = resolve_entropy(random_state)
    rows = row_chunks(n_samples, chunks, row_bytes=8 * (n_features + 1))
    token = tokenize("make_blobs", n_samples, n_features, fixed, n_centers, std, center_box,
                     rows, entropy, dtype.str, array_type)
    model_fn = partial(_blobs_model, entropy, fixed, n_centers, n_features, center_box, std)
    chunk_fn = partial(_blobs_chunk, entropy=entropy, dtype=dtype)
    X, y = assemble(
        "skdml-make-blobs", token, model_fn, chunk_fn, rows,
        [("X", (rows, (n_features,)), empty_meta(array_type, 2, dtype)),
         ("y", (rows,), empty_meta(array_type, 1, np.int64))],
        array_type=array_type,
    )
    if return_centers:
        return X, y, model_fn()["centers"]
    return X, y


# --------------------------------------------------------------------------------------------
# make_classification
# --------------------------------------------------------------------------------------------
def _hypercube_vertices(n_vertices, dimensions, rng):
    """``n_vertices`` distinct vertices of the unit hypercube (distinct on the first 30 axes)."""
    d0 = min(dimensions, 30)
    codes = rng.choice(2**d0, size=n_vertices, replace=False).astype(np.int64)
    out = ((codes[:, None] >> np.arange(d0)) & 1).astype(np.float64)
    if dimensions > d0:
        extra = rng.integers(0, 2, size=(n_vertices, dimensions - d0)).astype(np.float64)
        out = np.hstack([out, extra])
    return out


def _classification_model(entropy, n_informative, n_redundant, n_clusters, class_sep):
    rng = model_rng(entropy)
    centroids = _hypercube_vertices(n_clusters, n_informative, rng)
    centroids *= 2 * class_sep
    centroids -= class_sep
    transforms = 2 * rng.random((n_clusters, n_informative, n_informative)) - 1
    mixing = 2 * rng.random((n_informative, n_redundant)) - 1
    return {"centroids": centroids, "transforms": transforms, "mixing": mixing}


def _apportion(m, p, rng):
    """Split ``m`` rows among categories of probability ``p``: largest-remainder counts.

    Each count is ``floor(m * p_k)`` or one more; the leftover rows go to categories drawn
    with probability proportional to their fractional parts.
    """
    exact = m * p
    counts = np.floor(exact).astype(np.int64)
    rest = int(m - counts.sum())
    if rest > 0:
        frac = exact - counts
        if np.count_nonzero(frac > 0) >= rest:
            extra = rng.choice(len(p), size=rest, replace=False, p=frac / frac.sum())
        else:  # only reachable through rounding of p
            extra = rng.choice(len(p), size=rest, replace=True, p=p)
        np.add.at(counts, extra, 1)
    while rest < 0:  # rounding pushed the floors above m
        counts[np.argmax(counts)] -= 1
        rest += 1
    return counts


def _classification_chunk(model, index, start, stop, *, entropy, n_features, n_informative,
                          n_redundant, n_classes, cluster_p, flip_y, dtype):
    rng = chunk_rng(entropy, index)
    m = stop - start
    n_clusters = len(cluster_p)
    counts = _apportion(m, cluster_p, rng)
    X = np.empty((m, n_features))
    X[:, :n_informative] = rng.standard_normal((m, n_informative))
    y = np.empty(m, dtype=np.int64)
    lo = 0
    for k in range(n_clusters):
        hi = lo + int(counts[k])
        block = X[lo:hi, :n_informative]
        block[...] = block @ model["transforms"][k]  # random covariance
        block += model["centroids"][k]
        y[lo:hi] = k % n_classes
        lo = hi
    if n_redundant:
        X[:, n_informative:n_informative + n_redundant] = X[:, :n_informative] @ model["mixing"]
    n_useless = n_features - n_informative - n_redundant
    if n_useless:
        X[:, n_features - n_useless:] = rng.standard_normal((m, n_useless))
    if flip_y > 0:
        flip = rng.random(m) < flip_y
        y[flip] = rng.integers(0, n_classes, size=int(flip.sum()))
    order = rng.permutation(m)
    return X[order].astype(dtype, copy=False), y[order]


def make_classification(n_samples=100, n_features=20, *, n_informative=2, n_redundant=2,
                        n_classes=2, n_clusters_per_class=2, class_sep=1.0, flip_y=0.01,
                        weights=None, chunks=None, random_state=None, dtype=np.float64,
                        array_type="numpy"):
    """Generate a random n-class classification problem, lazily and chunk by chunk.

    The generative model is scikit-learn's: each class is made of ``n_clusters_per_class``
    Gaussian clusters centred on vertices of a hypercube of side ``2 * class_sep`` in the
    subspace of the informative features, each with its own random covariance. Redundant
    features are random linear combinations of the informative ones, the remaining features are
    standard normal noise, and a fraction ``flip_y`` of the labels is replaced at random.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples.
    n_features : int, default=20
        Total number of features: ``n_informative`` informative, ``n_redundant`` redundant and
        ``n_features - n_informative - n_redundant`` noise features, in this column order.
    n_informative : int, default=2
        Number of informative features.
    n_redundant : int, default=2
        Number of redundant features.
    n_classes : int, default=2
        Number of classes.
    n_clusters_per_class : int, default=2
        Number of clusters per class.
    class_sep : float, default=1.0
        Half the side of the hypercube; larger values make the problem easier.
    flip_y : float, default=0.01
        Fraction of samples whose class is replaced by a uniformly drawn one.
    weights : array-like of shape (n_classes,) or (n_classes - 1,), default=None
        Proportion of samples in each class (normalised to sum to one); with ``n_classes - 1``
        values the last class gets ``1 - sum(weights)``. ``None`` means balanced classes.
    chunks : int or tuple of int, default=None
        Rows per chunk (an int; the last chunk takes the rest) or the size of each chunk.
        ``None`` fits each chunk in Dask's ``array.chunk-size`` (128 MiB).
    random_state : int, RandomState or Generator, default=None
        Seed of the whole dataset. The values depend on it and on the chunking.
    dtype : {np.float64, np.float32}, default=np.float64
        dtype of ``X``.
    array_type : {"numpy", "cupy"}, default="numpy"
        Chunk type of ``X`` and ``y``. ``"cupy"`` needs the GPU extra (``skdml[gpu]``).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        The samples, chunked by rows.
    y : dask.array.Array of shape (n_samples,)
        The class of each sample (int64), chunked like ``X``.

    See Also
    --------
    sklearn.datasets.make_classification : The in-memory counterpart.
    make_blobs : Isotropic Gaussian clusters.

    Notes
    -----
    The model-level random quantities (centroids, one covariance transform per cluster, the
    redundant mixing matrix) are drawn once from ``random_state``, by one small task that every
    chunk reads. Every chunk then draws its rows from its own seed: the clusters' shares of the
    chunk follow ``weights`` to within one row, so every chunk holds every class in the right
    proportion (before label noise), and rows are shuffled within the chunk. Unlike
    scikit-learn's default (``shuffle=True``) the feature columns are not permuted, and there
    are no repeated features, ``shift``, ``scale`` or ``hypercube=False``.

    Examples
    --------
    >>> from skdml.datasets import make_classification
    >>> X, y = make_classification(n_samples=1000, n_features=10, chunks=500, random_state=0)
    >>> X  # doctest: +ELLIPSIS
    dask.array<skdml-make-classification-X, shape=(1000, 10), dtype=float64, ...>
    >>> y.dtype
    dtype('int64')
    >>> sorted(set(y.compute().tolist()))
    [0, 1]
    """
    n_samples = check_int(n_samples, "n_samples")
    n_features = check_int(n_features, "n_features")
    n_informative = check_int(n_informative, "n_informative")
    n_redundant = check_int(n_redundant, "n_redundant", minimum=0)
    n_classes = check_int(n_classes, "n_classes")
    n_clusters_per_class = check_int(n_clusters_per_class, "n_clusters_per_class")
    class_sep = check_real(class_sep, "class_sep")
    flip_y = check_real(flip_y, "flip_y", low=0.0, high=1.0)
    dtype = check_dtype(dtype)
    array_type = check_array_type(array_type)
    if n_informative + n_redundant > n_features:
        raise ValueError(
            f"n_informative + n_redundant ({n_informative} + {n_redundant}) must be at most "
            f"n_features ({n_features}); pass more features or fewer informative/redundant ones."
        )
    n_clusters = n_classes * n_clusters_per_class
    if n_informative < 31 and n_clusters > 2**n_informative:
        raise ValueError(
            f"n_classes ({n_classes}) * n_clusters_per_class ({n_clusters_per_class}) must be at "
            f"most 2**n_informative = {2**n_informative}; increase n_informative."
        )
    if weights is None:
        w = np.full(n_classes, 1.0 / n_classes)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if len(w) == n_classes - 1:
            w = np.append(w, 1.0 - w.sum())
        if len(w) != n_classes:
            raise ValueError(
                f"weights must have n_classes ({n_classes}) or n_classes - 1 values; "
                f"got {len(w)}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weights must be non-negative with a positive sum; got {list(weights)!r} "
                f"(completed to {w.tolist()})."
            )
        w = w / w.sum()
    cluster_p = np.array([w[k % n_classes] / n_clusters_per_class for k in range(n_clusters)])
    cluster_p /= cluster_p.sum()

    entropy = resolve_entropy(random_state)
    rows = row_chunks(n_samples, chunks, row_bytes=8 * (n_features + 1))
    token = tokenize("make_classification", n_samples, n_features, n_informative, n_redundant,
                     n_classes, n_clusters_per_class, class_sep, flip_y, cluster_p, rows,
                     entropy, dtype.str, array_type)
    model_fn = partial(_classification_model, entropy, n_informative, n_redundant, n_clusters,
                       class_sep)
    chunk_fn = partial(_classification_chunk, entropy=entropy, n_features=n_features,
                       n_informative=n_informative, n_redundant=n_redundant,
                       n_classes=n_classes, cluster_p=cluster_p, flip_y=flip_y, dtype=dtype)
    X, y = assemble(
        "skdml-make-classification", token, model_fn, chunk_fn, rows,
        [("X", (rows, (n_features,)), empty_meta(array_type, 2, dtype)),
         ("y", (rows,), empty_meta(array_type, 1, np.int64))],
        array_type=array_type,
    )
    return X, y


# --------------------------------------------------------------------------------------------
# make_regression
# --------------------------------------------------------------------------------------------
def _regression_model(entropy, n_features, n_informative, n_targets):
    rng = model_rng(entropy)
    coef = np.zeros((n_features, n_targets))
    coef[:n_informative] = 100 * rng.random((n_informative, n_targets))
    return coef[rng.permutation(n_features)]  # informative features at random columns


def _regression_chunk(coef, index, start, stop, *, entropy, bias, noise, dtype, squeeze):
    rng = chunk_rng(entropy, index)
    m = stop - start
    X = rng.standard_normal((m, coef.shape[0])).astype(dtype, copy=False)
    # y from the X that is returned (after any rounding to float32), in float64
    y = X.astype(np.float64, copy=False) @ coef
    y += bias
    if noise > 0:
        y += noise * rng.standard_normal(y.shape)
    y = y.astype(dtype, copy=False)
    return X, (y[:, 0] if squeeze else y)


def make_regression(n_samples=100, n_features=100, *, n_informative=10, n_targets=1, bias=0.0,
                    noise=0.0, coef=False, chunks=None, random_state=None, dtype=np.float64,
                    array_type="numpy"):
    """Generate a random linear regression problem, lazily and chunk by chunk.

    ``X`` is standard normal and ``y = X @ coef + bias + noise``, where only ``n_informative``
    features (at random columns) have a non-zero coefficient, drawn uniformly in [0, 100).

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples.
    n_features : int, default=100
        Number of features.
    n_informative : int, default=10
        Number of features with a non-zero coefficient (at most ``n_features``; larger values
        are reduced to ``n_features``, as in scikit-learn).
    n_targets : int, default=1
        Number of regression targets. ``y`` is 1-D when it is 1.
    bias : float, default=0.0
        Intercept added to every target.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to ``y``.
    coef : bool, default=False
        Also return the true coefficients.
    chunks : int or tuple of int, default=None
        Rows per chunk (an int; the last chunk takes the rest) or the size of each chunk.
        ``None`` fits each chunk in Dask's ``array.chunk-size`` (128 MiB).
    random_state : int, RandomState or Generator, default=None
        Seed of the whole dataset. The values depend on it and on the chunking.
    dtype : {np.float64, np.float32}, default=np.float64
        dtype of ``X`` and ``y``. ``y`` is computed in float64 from the returned ``X``.
    array_type : {"numpy", "cupy"}, default="numpy"
        Chunk type of ``X`` and ``y``. ``"cupy"`` needs the GPU extra (``skdml[gpu]``).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        The samples, chunked by rows.
    y : dask.array.Array of shape (n_samples,) or (n_samples, n_targets)
        The targets, chunked like ``X``.
    coef : ndarray of shape (n_features,) or (n_features, n_targets)
        The true coefficients (float64 NumPy array). Only when ``coef=True``.

    See Also
    --------
    sklearn.datasets.make_regression : The in-memory counterpart.

    Notes
    -----
    The coefficients are drawn once, by one small task that every chunk reads (and by the
    client when ``coef=True``). Unlike scikit-learn there is no ``effective_rank`` and rows are
    not shuffled (they are independent draws already).

    Examples
    --------
    >>> import numpy as np
    >>> from skdml.datasets import make_regression
    >>> X, y, w = make_regression(n_samples=200, n_features=5, n_informative=2, bias=1.0,
    ...                           coef=True, chunks=50, random_state=0)
    >>> X.shape, y.shape, w.shape
    ((200, 5), (200,), (5,))
    >>> int(np.count_nonzero(w))
    2
    >>> bool(np.allclose(X.compute() @ w + 1.0, y.compute()))
    True
    """
    n_samples = check_int(n_samples, "n_samples")
    n_features = check_int(n_features, "n_features")
    n_informative = min(check_int(n_informative, "n_informative", minimum=0), n_features)
    n_targets = check_int(n_targets, "n_targets")
    bias = check_real(bias, "bias")
    noise = check_real(noise, "noise", low=0.0)
    dtype = check_dtype(dtype)
    array_type = check_array_type(array_type)

    entropy = resolve_entropy(random_state)
    rows = row_chunks(n_samples, chunks, row_bytes=8 * (n_features + n_targets))
    token = tokenize("make_regression", n_samples, n_features, n_informative, n_targets, bias,
                     noise, rows, entropy, dtype.str, array_type)
    model_fn = partial(_regression_model, entropy, n_features, n_informative, n_targets)
    squeeze = n_targets == 1
    chunk_fn = partial(_regression_chunk, entropy=entropy, bias=bias, noise=noise, dtype=dtype,
                       squeeze=squeeze)
    y_chunks = (rows,) if squeeze else (rows, (n_targets,))
    X, y = assemble(
        "skdml-make-regression", token, model_fn, chunk_fn, rows,
        [("X", (rows, (n_features,)), empty_meta(array_type, 2, dtype)),
         ("y", y_chunks, empty_meta(array_type, len(y_chunks), dtype))],
        array_type=array_type,
    )
    if coef:
        w = model_fn()
        return X, y, (w[:, 0] if squeeze else w)
    return X, y
