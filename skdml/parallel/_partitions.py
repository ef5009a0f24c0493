"""Persisted row-partitions and located task results."""
from __future__ import annotations

from dataclasses import dataclass, field

import dask
import numpy as np

from ._executor import get_executor, new_name

__all__ = ["Partitions", "Parts", "persist_partitions"]


class Parts(list):
    """A list of task handles (futures, or Delayed on the local scheduler) that knows where
    each one was placed.

    Attributes
    ----------
    workers : list of str or None
        The worker each handle was placed on (``None`` where unknown or on the local scheduler).
    partitions : list of list of int
        The data partitions whose results each handle holds.
    """

    def __init__(self, handles=(), workers=None, partitions=None):
        super().__init__(handles)
        self.workers = list(workers) if workers is not None else [None] * len(self)
        self.partitions = (list(partitions) if partitions is not None
                           else [[i] for i in range(len(self))])
        self.n_backups = 0
        self._settle = None

    def settle(self):
        """Wait until every task has a finished copy, and return the handles of those copies.

        For the result of ``map_partitions(..., block=False)`` on a speculative stage, this is
        where stragglers get their backup copies (the wait ``map_partitions`` does itself when
        it blocks); otherwise it waits for the futures (nothing to wait for on the threaded
        scheduler, where handles are lazy).

        Returns
        -------
        Parts
            ``self`` when every original task finished first, else new Parts (same workers and
            partitions) holding the winning copies; ``n_backups`` says how many were launched.
        """
        if self._settle is not None:
            settle, self._settle = self._settle, None
            winners, n_backups = settle(list(self))
            self.n_backups = n_backups
            if any(a is not b for a, b in zip(winners, self)):
                out = Parts(winners, workers=self.workers, partitions=self.partitions)
                out.n_backups = n_backups
                return out
        return self


@dataclass
class Partitions:
    """Row-partitions of one or more aligned Dask arrays, persisted on the cluster.

    Built by :func:`persist_partitions`. ``blocks[i]`` is a tuple with partition ``i`` of each
    array (futures on a distributed cluster, Delayed objects on the local scheduler).
    Persisted from a graph, so a partition lost with its worker is recomputed from its lineage.

    Attributes
    ----------
    blocks : list of tuple
        ``blocks[i][j]`` is partition ``i`` of array ``j``.
    workers : list of str or None
        Worker holding each partition when it was persisted (``None`` on the local scheduler).
    lengths : list of int
        Number of rows in each partition.
    nthreads : dict
        ``{worker: threads}`` of the cluster when persisted.
    arrays : tuple of dask.array.Array
        The persisted arrays (keeping them referenced keeps the data on the workers).
    summary : Parts or None
        The per-partition summaries asked of :func:`persist_partitions` (``summarize=``), one
        handle per partition, still on the cluster; None when none was asked for.
    """

    blocks: list
    workers: list
    lengths: list
    nthreads: dict
    arrays: tuple = field(default=(), repr=False)
    summary: object = field(default=None, repr=False)

    @property
    def n_partitions(self):
        """Number of partitions."""
        return len(self.blocks)

    @property
    def n_samples(self):
        """Total number of rows."""
        return int(sum(self.lengths))

    def groups(self, group_by="worker"):
        """Split partition indices into task groups.

        ``"partition"`` gives one group per partition. ``"worker"`` gives, for each worker, one
        group per worker thread (partitions dealt round-robin), so a stage has as many tasks as
        the cluster has threads and every thread is busy. An int ``k`` gives groups of at most
        ``k`` partitions from the same worker.

        Returns
        -------
        list of (worker, list of int)
        """
        if group_by == "partition":
            return [(w, [i]) for i, w in enumerate(self.workers)]
        by_worker = {}
        for i, w in enumerate(self.workers):
            by_worker.setdefault(w, []).append(i)
        out = []
        for w, idx in by_worker.items():
            if group_by == "worker":
                n = max(1, min(len(idx), int(self.nthreads.get(w, 1) or 1)))
                out.extend((w, idx[t::n]) for t in range(n))
            elif isinstance(group_by, (int, np.integer)) and group_by >= 1:
                out.extend((w, idx[s:s + group_by]) for s in range(0, len(idx), group_by))
            else:
                raise ValueError(
                    f"group_by must be 'worker', 'partition' or a positive int; got {group_by!r}."
                )
        return out

    def release(self):
        """Drop the references that keep the partitions on the workers."""
        self.blocks = []
        self.arrays = ()
        self.summary = None


def persist_partitions(*arrays, client=None, summarize=None, name="summary"):
    """Persist aligned Dask arrays on the cluster and return their row-partitions.

    On a cluster of several workers the rows are then balanced: partitions on a worker that
    holds more than its share of the rows (in proportion to its threads) are copied to the
    workers furthest below theirs, keeping their lineage (see ``_balance``).

    Parameters
    ----------
    *arrays : dask.array.Array
        Arrays with the same row chunks (``None`` entries are kept as ``None`` in every block).
        Only the first axis may have several chunks.
    client : distributed.Client, default=None
        The client to use; by default the active one, else Dask's threaded scheduler.
    summarize : callable, default=None
        ``summarize(*blocks)`` of every partition (its block of each array, ``None`` for
        ``None`` entries), e.g. the labels it holds and their counts. Submitted together with
        the persist, so each runs as soon as its partition is in memory, where it is: the
        summaries (``Partitions.summary``, one handle per partition) cost the caller no round
        trip of their own. Read them with :func:`aggregate`, or combine them on the cluster
        with :func:`tree_reduce` for later tasks to take before the client has read them.
    name : str, default="summary"
        Task names of the summaries become ``skdml-<name>-<token>``.

    Returns
    -------
    Partitions
        The persisted blocks, where they live and how long they are.

    Examples
    --------
    >>> import dask.array as da
    >>> from skdml.parallel import persist_partitions
    >>> parts = persist_partitions(da.ones((10, 2), chunks=(4, 2)))
    >>> parts.n_partitions, parts.lengths
    (3, [4, 4, 2])

    A summary of every partition, computed as it is persisted and read on the client:

    >>> from skdml.parallel import aggregate
    >>> y = da.from_array([0, 2, 2, 1, 0, 2, 1, 1, 2, 0], chunks=4)
    >>> parts = persist_partitions(da.ones((10, 2), chunks=(4, 2)), y,
    ...                            summarize=lambda X, y: int(y.max()))
    >>> aggregate(parts.summary, max)
    2
    """
    present = [a for a in arrays if a is not None]
    if not present:
        raise ValueError("persist_partitions needs at least one Dask array.")
    if summarize is not None and not callable(summarize):
        raise TypeError(
            f"summarize must be a function of a partition's blocks; got {summarize!r}."
        )
    row_chunks = present[0].chunks[0]
    for a in present:
        if a.chunks[0] != row_chunks:
            raise ValueError(
                "Arrays passed together must have the same row chunks; got "
                f"{a.chunks[0]} and {row_chunks}. Rechunk them alike (skdml's input adapters "
                "do this for X, y and sample_weight)."
            )
        if any(len(c) != 1 for c in a.chunks[1:]):
            raise ValueError(
                f"Only the row axis may be split into chunks; got chunks {a.chunks}. Rechunk "
                "with X.rechunk({1: -1})."
            )
    if any(np.isnan(c) for c in row_chunks):
        raise ValueError(
            "Row chunk sizes are unknown (nan); call X.compute_chunk_sizes() first."
        )
    ex = get_executor(client)
    if ex.distributed:
        persisted = ex.client.persist(present)
        futures = {}
        from distributed import futures_of

        for a in persisted:
            for f in futures_of(a):
                futures[f.key] = f
        cols = [[futures[k] for k in _row_keys(a)] for a in persisted]
        summary = _summaries(ex, _blocks(arrays, cols), summarize, name)
        ex.wait([f for col in cols for f in col])
        for f in (f for col in cols for f in col):
            if f.status == "error":
                f.result()  # raise the partition's own error (e.g. NaN found by a check)
        who = ex.client.who_has(cols[0])
        workers = [(sorted(who.get(f.key, ())) or [None])[0] for f in cols[0]]
        nthreads = ex.nthreads()
        cols, workers, persisted = _balance(ex, cols, workers, nthreads,
                                            [int(c) for c in row_chunks], persisted)
    else:
        persisted = dask.persist(*present, scheduler="threads")
        cols = [list(a.to_delayed().ravel()) for a in persisted]
        workers = [None] * len(row_chunks)
        nthreads = {None: 1}
        summary = _summaries(ex, _blocks(arrays, cols), summarize, name)
    blocks = _blocks(arrays, cols)
    return Partitions(blocks=blocks, workers=workers, lengths=[int(c) for c in row_chunks],
                      nthreads=nthreads, arrays=tuple(persisted), summary=summary)


def _blocks(arrays, cols):
    """Per partition, the tuple of its handle in each array's column of ``cols`` (``None``
    for the ``None`` entries of ``arrays``)."""
    it = iter(cols)
    n = len(cols[0])
    full = [next(it) if a is not None else [None] * n for a in arrays]
    return [tuple(col[i] for col in full) for i in range(n)]


def _summaries(ex, blocks, summarize, name):
    """``summarize`` of every partition (one handle each, in a Parts), or None."""
    if summarize is None:
        return None
    prefix = new_name(name)
    keys = [(prefix, i) for i in range(len(blocks))]
    return Parts(ex.submit_many(summarize, blocks, keys=keys))


def aligned_block(block):
    """``block`` with its data at an aligned address (copied only when it is not).

    NumPy arrays (and scipy.sparse arrays' parts) that distributed deserializes on a worker can
    be views of a received frame at an address that is not a multiple of the item size: the
    compiled kernels take only aligned arrays (an unaligned block would run another kernel,
    whose rounding differs, so results would depend on which worker read which copy), and
    NumPy gathers from them (``take``) many times slower (measured: 111 us instead of 1.1 us
    for 4 rows of a 1000 x 20 block).
    """
    if isinstance(block, np.ndarray):
        return block if block.flags.aligned else np.require(block, requirements="A")
    if hasattr(block, "tocsr"):  # scipy.sparse
        parts = (block.data, block.indices, block.indptr)
        return block if all(p.flags.aligned for p in parts) else block.copy()
    return block


def _balance(ex, cols, workers, nthreads, lengths, arrays):
    """Move partitions off workers holding more rows than their share of the threads.

    Dask places the tasks that generate or load the data where it sees fit, and measured 3:1
    splits over two workers (an epoch then takes as long as the busier worker needs). Each
    surplus partition, largest first, is copied by a task preferring the worker furthest below
    its share, as long as that brings the two closer; the copies keep their lineage (they
    depend on the originals), so a lost worker is still recovered by recomputation.

    Returns the new ``(cols, workers, arrays)``: ``arrays`` rebuilt as Dask arrays over the
    blocks' futures (the originals of moved blocks are no longer referenced, so their memory is
    freed).
    """
    live = [w for w in sorted(nthreads) if nthreads[w]]
    if len(live) < 2 or any(w not in nthreads for w in workers):
        return cols, workers, arrays
    total_rows = float(sum(lengths))
    total_threads = float(sum(nthreads[w] for w in live))
    share = {w: total_rows * nthreads[w] / total_threads for w in live}
    load = {w: 0.0 for w in live}
    for w, n in zip(workers, lengths):
        load[w] += n
    moves = {}
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        src = workers[i]
        dst = min(live, key=lambda w: load[w] - share[w])
        n = lengths[i]
        # move only when it reduces the larger of the two workers' excess
        if dst == src or max(load[src] - n - share[src], load[dst] + n - share[dst]) >= \
                max(load[src] - share[src], load[dst] - share[dst]):
            continue
        load[src] -= n
        load[dst] += n
        moves[i] = dst
    if not moves:
        return cols, workers, arrays
    prefix = new_name("balance")
    new_cols = [list(col) for col in cols]
    for i, dst in moves.items():
        for j, col in enumerate(cols):
            new_cols[j][i] = ex.submit(aligned_block, col[i], key=(prefix, j, i), workers=[dst])
        workers = list(workers)
        workers[i] = dst
    ex.wait([new_cols[j][i] for i in moves for j in range(len(cols))])
    who = ex.client.who_has([new_cols[0][i] for i in moves])
    for i in moves:  # where the copy actually landed (another worker if dst was lost)
        workers[i] = (sorted(who.get(new_cols[0][i].key, ())) or [workers[i]])[0]
    return new_cols, workers, tuple(_array_of(a, col, prefix, j)
                                    for j, (a, col) in enumerate(zip(arrays, new_cols)))


def _array_of(like, futures, prefix, j):
    """A Dask array like ``like`` whose row blocks are ``futures``."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    name = f"{prefix}-array{j}"
    tail = (0,) * (like.ndim - 1)
    dsk = {(name, i) + tail: f for i, f in enumerate(futures)}
    return da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=[]), name,
                    chunks=like.chunks, dtype=like.dtype, meta=like._meta)


def _row_keys(a):
    """The key of each row block (the first key along the other axes, which have one chunk)."""
    out = []
    for k in a.__dask_keys__():
        while isinstance(k, list):
            k = k[0]
        out.append(k)
    return out
