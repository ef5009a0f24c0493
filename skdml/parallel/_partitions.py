"""Persisted row-partitions and located task results."""
from __future__ import annotations

from dataclasses import dataclass, field

import dask
import numpy as np

from ._executor import get_executor

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
    """

    blocks: list
    workers: list
    lengths: list
    nthreads: dict
    arrays: tuple = field(default=(), repr=False)

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


def persist_partitions(*arrays, client=None):
    """Persist aligned Dask arrays on the cluster and return their row-partitions.

    Parameters
    ----------
    *arrays : dask.array.Array
        Arrays with the same row chunks (``None`` entries are kept as ``None`` in every block).
        Only the first axis may have several chunks.
    client : distributed.Client, default=None
        The client to use; by default the active one, else Dask's threaded scheduler.

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
    """
    present = [a for a in arrays if a is not None]
    if not present:
        raise ValueError("persist_partitions needs at least one Dask array.")
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
        ex.wait([f for col in cols for f in col])
        for f in (f for col in cols for f in col):
            if f.status == "error":
                f.result()  # raise the partition's own error (e.g. NaN found by a check)
        who = ex.client.who_has(cols[0])
        workers = [(sorted(who.get(f.key, ())) or [None])[0] for f in cols[0]]
        nthreads = ex.nthreads()
    else:
        persisted = dask.persist(*present, scheduler="threads")
        cols = [list(a.to_delayed().ravel()) for a in persisted]
        workers = [None] * len(row_chunks)
        nthreads = {None: 1}
    it = iter(cols)
    full = [next(it) if a is not None else [None] * len(row_chunks) for a in arrays]
    blocks = [tuple(col[i] for col in full) for i in range(len(row_chunks))]
    return Partitions(blocks=blocks, workers=workers, lengths=[int(c) for c in row_chunks],
                      nthreads=nthreads, arrays=tuple(persisted))


def _row_keys(a):
    """The key of each row block (the first key along the other axes, which have one chunk)."""
    out = []
    for k in a.__dask_keys__():
        while isinstance(k, list):
            k = k[0]
        out.append(k)
    return out
