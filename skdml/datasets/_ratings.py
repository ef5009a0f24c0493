"""A lazy user x item ratings generator with low-rank structure, for recommender benchmarks."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from dask.base import tokenize

from ._common import (
    assemble,
    check_dtype,
    check_int,
    check_real,
    chunk_rng,
    model_rng,
    resolve_entropy,
    row_chunks,
)

__all__ = ["Ratings", "make_ratings"]

# Batch of (user, item) pairs whose dot products are computed at once (bounds the temporary
# n_pairs x rank gathers).
_DOT_BATCH = 1 << 16
# Items rated by at least this share of users are drawn as a dense Bernoulli mask, in batches
# of about _DENSE_BATCH (item, user) cells.
_DENSE_Q = 1.0 / 16
_DENSE_BATCH = 1 << 22


@dataclass(frozen=True, eq=False)
class Ratings:
    """The result of :func:`make_ratings`.

    Attributes
    ----------
    train : dask.array.Array of shape (n_users, n_items)
        Observed training ratings. Chunks are ``scipy.sparse.csr_matrix`` blocks of consecutive
        users (one chunk along items); absent pairs are structural zeros.
    test : dask.array.Array of shape (nan, 3)
        Held-out ratings as float64 rows ``(user, item, rating)`` with global user and item
        indices, one chunk per user chunk of ``train`` (so chunk sizes are unknown until
        computed; ``test.compute_chunk_sizes()`` finds them). No pair is both in train and test.
    user_factors : dask.array.Array of shape (n_users, rank)
        True user factors (float64), chunked like the rows of ``train``. It is lazy because it
        grows with the number of users; each chunk comes from the same task as the ratings.
    item_factors : ndarray of shape (n_items, rank)
        True item factors (float64).
    item_popularity : ndarray of shape (n_items,)
        Probability that a given user rates each item (in train or test); it sums to
        ``density * n_items``.
    implicit : bool
        Whether the values are implicit-feedback counts instead of ratings.
    """

    train: object
    test: object
    user_factors: object
    item_factors: np.ndarray
    item_popularity: np.ndarray
    implicit: bool = False

    @property
    def shape(self):
        """``(n_users, n_items)``."""
        return self.train.shape

    def __repr__(self):
        n_users, n_items = self.train.shape
        return (f"Ratings(n_users={n_users}, n_items={n_items}, "
                f"rank={self.item_factors.shape[1]}, implicit={self.implicit}, "
                f"train={self.train!r}, test={self.test!r})")


def _rating_probabilities(weights, mean_count):
    """``q = min(1, c * weights)`` with ``c`` such that ``sum(q) == mean_count``.

    ``weights`` must be positive and sorted in decreasing order. The first ``t`` items are
    saturated (``q = 1``) and ``c = (mean_count - t) / sum(weights[t:])``; the right ``t`` is
    the one where that ``c`` saturates exactly the first ``t`` items.
    """
    n = len(weights)
    if mean_count >= n:
        return np.ones(n)
    t = np.arange(n)
    tail = np.cumsum(weights[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (mean_count - t) / tail
    fits = (mean_count - t > 0) & (c * weights <= 1.0 + 1e-12)
    prev_saturated = np.ones(n, dtype=bool)
    prev_saturated[1:] = c[1:] * weights[:-1] >= 1.0 - 1e-12
    ok = np.flatnonzero(fits & prev_saturated)
    best = ok[0] if len(ok) else int(np.argmax(fits))
    return np.minimum(1.0, c[best] * weights)


def _ratings_model(entropy, n_items, rank, skew, density):
    rng = model_rng(entropy)
    # Uniform factors in [0, sqrt(12 / rank)): E[u . v] = 3 and Var[u . v] = 7 / rank.
    item_factors = rng.random((n_items, rank)) * np.sqrt(12.0 / rank)
    popularity_rank = rng.permutation(n_items)  # 0 = most popular; ranks in random item order
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** (-skew)
    q_by_rank = _rating_probabilities(weights / weights.sum(), density * n_items)
    return {"item_factors": item_factors, "popularity": q_by_rank[popularity_rank]}


def _sorted_unique(keys):
    """Sorted distinct values of an int array (sort + neighbour test; faster than np.unique)."""
    keys.sort()
    if len(keys) > 1:
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys


def _sample_pairs(m, q, rng):
    """The observed (user, item) pairs of ``m`` users: pair (u, j) independently with
    probability ``q[j]``. Returns local user and item indices sorted by user, then item.

    Popular items (``q >= 1/16``) draw a Bernoulli mask over the users; the others draw how
    many users rate them (binomial), then that many distinct users uniformly (with-replacement
    draws, duplicates removed, topped up until complete; each draw is new with probability
    over 15/16). The work is proportional to the number of pairs plus ``n_items``.
    """
    items_out, users_out = [], []
    dense = np.flatnonzero(q >= _DENSE_Q)
    batch = max(1, _DENSE_BATCH // m)
    for lo in range(0, len(dense), batch):
        cols = dense[lo:lo + batch]
        hit = rng.random((len(cols), m)) < q[cols, None]
        row, user = np.nonzero(hit)
        items_out.append(cols[row])
        users_out.append(user)
    sparse = np.flatnonzero((q > 0) & (q < _DENSE_Q))
    counts = rng.binomial(m, q[sparse])
    keys = np.empty(0, dtype=np.int64)  # sparse position * m + user
    need = counts
    while need.any():
        pos = np.repeat(np.arange(len(sparse), dtype=np.int64), need)
        keys = _sorted_unique(np.concatenate([keys, pos * m + rng.integers(0, m, size=len(pos))]))
        need = counts - np.bincount(keys // m, minlength=len(sparse))
    items_out.append(sparse[keys // m])
    users_out.append(keys % m)
    n_items = len(q)
    key = (np.concatenate(users_out).astype(np.int64) * n_items
           + np.concatenate(items_out).astype(np.int64))
    key.sort()
    return key // n_items, key % n_items


def _ratings_chunk(model, index, start, stop, *, entropy, rank, noise, implicit, test_fraction,
                   dtype):
    import scipy.sparse as sp

    rng = chunk_rng(entropy, index)
    m = stop - start
    item_factors = model["item_factors"]
    n_items = item_factors.shape[0]
    user_factors = rng.random((m, rank)) * np.sqrt(12.0 / rank)
    users, items = _sample_pairs(m, model["popularity"], rng)
    nnz = len(users)
    values = np.empty(nnz)
    for lo in range(0, nnz, _DOT_BATCH):
        hi = min(lo + _DOT_BATCH, nnz)
        values[lo:hi] = np.einsum("ij,ij->i", user_factors[users[lo:hi]],
                                  item_factors[items[lo:hi]])
    if noise > 0:
        values += noise * rng.standard_normal(nnz)
    if implicit:
        values = 1.0 + rng.poisson(np.maximum(values, 0.0))
    else:
        np.clip(values, 1.0, 5.0, out=values)
    held_out = rng.random(nnz) < test_fraction
    keep = ~held_out
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(users[keep], minlength=m), out=indptr[1:])
    train = sp.csr_matrix((values[keep].astype(dtype), items[keep], indptr), shape=(m, n_items))
    test = np.column_stack([(users[held_out] + start).astype(np.float64),
                            items[held_out].astype(np.float64), values[held_out]])
    return train, test, user_factors


def make_ratings(n_users=1000, n_items=500, *, density=0.01, rank=10, skew=1.0, noise=0.1,
                 implicit=False, test_fraction=0.1, chunks=None, random_state=None,
                 dtype=np.float64):
    """Generate a sparse user x item ratings matrix with low-rank structure, lazily.

    Made for recommender (ALS) benchmarks. True factors ``U`` (users) and ``V`` (items) have
    independent uniform entries in ``[0, sqrt(12 / rank))``, so ``u . v`` has mean 3 and
    variance ``7 / rank``. Item popularity follows a Zipf-like power law: the item of
    popularity rank ``r`` (ranks are assigned to items in random order) has weight
    ``w_r = (r + 1) ** -skew``, and each user rates it independently with probability
    ``min(1, c * w_r)``, where ``c`` makes the expected number of ratings per user exactly
    ``density * n_items`` (so with a strong skew the most popular items are rated by every
    user). A rating is ``clip(u . v + noise * N(0, 1), 1, 5)``; with ``implicit=True`` it is
    instead a count ``1 + Poisson(max(u . v + noise * N(0, 1), 0))``. Each observed pair goes
    to the test set with probability ``test_fraction``, otherwise to the training matrix.

    Parameters
    ----------
    n_users : int, default=1000
        Number of users (rows).
    n_items : int, default=500
        Number of items (columns).
    density : float in (0, 1], default=0.01
        Expected fraction of the items each user rates (train and test together).
    rank : int, default=10
        Rank of the true factors.
    skew : float >= 0, default=1.0
        Exponent of the item popularity power law; 0 makes all items equally popular.
    noise : float >= 0, default=0.1
        Standard deviation of the Gaussian noise added to ``u . v``.
    implicit : bool, default=False
        Generate positive counts (implicit feedback) instead of ratings in [1, 5].
    test_fraction : float in [0, 1), default=0.1
        Probability that an observed pair is held out.
    chunks : int or tuple of int, default=None
        Users per chunk (an int; the last chunk takes the rest) or the size of each chunk.
        ``None`` keeps each chunk to about a quarter of Dask's ``array.chunk-size`` of
        expected sparse data (roughly 3 million ratings), to leave room for generation.
    random_state : int, RandomState or Generator, default=None
        Seed of the whole dataset. The values depend on it and on the chunking.
    dtype : {np.float64, np.float32}, default=np.float64
        dtype of the values of ``train`` (``test`` is always float64, so that user and item
        indices stay exact).

    Returns
    -------
    Ratings
        With attributes ``train``, ``test``, ``user_factors`` (lazy), ``item_factors``,
        ``item_popularity`` and ``implicit``; see :class:`Ratings`.

    See Also
    --------
    sklearn.datasets.make_low_rank_matrix : A dense low-rank matrix, in memory.

    Notes
    -----
    Building computes nothing on the cluster: one task draws the item factors and popularities
    (the client draws the same ones to return them, O(n_items * rank)), and one task per user
    chunk draws its users' factors, their items and the ratings, in time proportional to its
    number of ratings plus ``n_items``. ``train``, ``test`` and ``user_factors`` come from that
    same task (tasks ``skdml-make-ratings-*``).

    Examples
    --------
    >>> from skdml.datasets import make_ratings
    >>> r = make_ratings(n_users=200, n_items=100, density=0.1, rank=4, chunks=50,
    ...                  random_state=0)
    >>> r.train  # doctest: +ELLIPSIS
    dask.array<skdml-make-ratings-train, shape=(200, 100), ..., chunktype=scipy.csr_matrix>
    >>> r.item_factors.shape
    (100, 4)
    >>> train = r.train.compute()
    >>> type(train).__name__
    'csr_matrix'
    >>> test = r.test.compute()
    >>> test.shape[1]
    3
    >>> bool(1 <= train.data.min() and train.data.max() <= 5)
    True
    """
    n_users = check_int(n_users, "n_users")
    n_items = check_int(n_items, "n_items")
    density = check_real(density, "density", low=0.0, high=1.0, low_closed=False)
    rank = check_int(rank, "rank")
    skew = check_real(skew, "skew", low=0.0)
    noise = check_real(noise, "noise", low=0.0)
    test_fraction = check_real(test_fraction, "test_fraction", low=0.0, high=1.0,
                               high_closed=False)
    implicit = bool(implicit)
    dtype = check_dtype(dtype)

    entropy = resolve_entropy(random_state)
    row_bytes = 48.0 * density * n_items + 8.0 * rank + 8.0
    rows = row_chunks(n_users, chunks, row_bytes=row_bytes, name="n_users")
    token = tokenize("make_ratings", n_users, n_items, density, rank, skew, noise, implicit,
                     test_fraction, rows, entropy, dtype.str)
    model_fn = partial(_ratings_model, entropy, n_items, rank, skew, density)
    chunk_fn = partial(_ratings_chunk, entropy=entropy, rank=rank, noise=noise, implicit=implicit,
                       test_fraction=test_fraction, dtype=dtype)
    import scipy.sparse as sp

    unknown = (np.nan,) * len(rows)
    train, test, users = assemble(
        "skdml-make-ratings", token, model_fn, chunk_fn, rows,
        [("train", (rows, (n_items,)), sp.csr_matrix((0, 0), dtype=dtype)),
         ("test", (unknown, (3,)), np.empty((0, 0), dtype=np.float64)),
         ("users", (rows, (rank,)), np.empty((0, 0), dtype=np.float64))],
    )
    model = model_fn()
    return Ratings(train=train, test=test, user_factors=users,
                   item_factors=model["item_factors"], item_popularity=model["popularity"],
                   implicit=implicit)
