"""map_partitions: run a kernel on every row-partition, one task per worker thread."""
from __future__ import annotations

from .. import _config
from ._executor import get_executor, new_name
from ._partitions import Partitions, Parts, aligned_block, persist_partitions
from ._speculation import run_speculative, timed_call

__all__ = ["map_partitions", "Replicated"]


#: Marks, inside a task's arguments, a value that the task folds itself (see Replicated).
_FOLD_ARG = "__skdml_fold__"


class Replicated(dict):
    """One copy of a value per worker: ``{worker address: handle}``.

    Returned by :func:`broadcast` and :func:`allreduce`. Passed as an argument to
    :func:`map_partitions`, each task receives the copy held by its own worker, so the value
    is never shipped per partition.

    An allreduce of small values may leave the final fold to the value's consumers: a
    :func:`map_partitions` task then receives the partial
    results and folds them itself before it runs, which saves the task hop of a separate fold
    task; a worker's copy is computed as a task of its own only when it is asked for
    (``replicated[worker]``, :meth:`values`, :meth:`any`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = None

    @classmethod
    def _folded_by_consumers(cls, ex, fold, args, workers, name):
        """The value ``fold(*args)`` (``args`` holding the partials' futures) on every worker
        of ``workers``, computed where it is used; ``name``: key prefix of the fold tasks of
        copies that are asked for (engine-internal: built by :func:`allreduce`)."""
        out = cls.fromkeys(workers)
        out._lazy = (ex, fold, tuple(args), name)
        return out

    def _copy(self, worker):
        handle = dict.__getitem__(self, worker)
        if handle is None and self._lazy is not None:
            ex, fold, args, name = self._lazy
            handle = ex.submit(fold, *args, key=(name, str(worker)), workers=worker)
            dict.__setitem__(self, worker, handle)
        return handle

    def __getitem__(self, worker):
        return self._copy(worker)

    def get(self, worker, default=None):
        return self._copy(worker) if worker in self else default

    def values(self):
        return [self._copy(w) for w in self]

    def items(self):
        return [(w, self._copy(w)) for w in self]

    def held(self):
        """The futures this value holds, without computing any copy.

        Keep them referenced for as long as the value may still be used.

        Returns
        -------
        list of Future
            The copies computed so far and, for a fold left to consumers, the partial
            results it folds.
        """
        made = [h for h in dict.values(self) if h is not None]
        if self._lazy is None:
            return made
        return made + [a for a in self._lazy[2] if hasattr(a, "key")]

    def for_worker(self, worker):
        """The copy on ``worker``, or any copy when that worker holds none; for a fold left to
        consumers, the fold itself, run by the task that receives it (even where a copy was
        asked for: waiting for that task would cost the hop that the fold saves)."""
        if self._lazy is not None:
            _, fold, args, _ = self._lazy
            return {_FOLD_ARG: [fold, *args]}
        if worker in self:
            return self[worker]
        return self.any()

    def any(self):
        """One of the copies (for bringing the value to the client)."""
        return self._copy(next(iter(self)))

    def result(self, client=None):
        """The value, on the client.

        For a fold left to consumers, the partial results are gathered and folded on the
        client, in the order every worker folds them (so to the same bits as each worker's
        copy), with no fold task and no task hop; otherwise one copy is gathered.

        Parameters
        ----------
        client : distributed.Client, default=None
            By default the active Client, else Dask's threaded scheduler.

        Returns
        -------
        object
            The value.
        """
        if self._lazy is not None:
            ex, fold, args, _ = self._lazy
            at = [i for i, a in enumerate(args) if hasattr(a, "key")]
            values = list(args)
            for i, v in zip(at, ex.gather([args[i] for i in at])):
                values[i] = v
            return fold(*values)
        return get_executor(client).gather(self.any())


def _resolve(arg):
    """An argument of a task, with a fold left to consumers (see Replicated) carried out."""
    if type(arg) is dict and len(arg) == 1 and _FOLD_ARG in arg:
        fold, *args = arg[_FOLD_ARG]
        return fold(*args)
    return arg


def _run_group(fn, blocks_list, indices, args, kwargs, combine, with_index, single):
    args = tuple(_resolve(a) for a in args)
    kwargs = {k: _resolve(v) for k, v in kwargs.items()}
    out = None
    results = []
    for blocks, i in zip(blocks_list, indices):
        kw = dict(kwargs)
        if with_index:
            kw["partition"] = i
        # a block fetched from another worker (a copy made for some other task) can sit at an
        # unaligned address: the kernel gets it aligned, whichever copy this worker holds
        r = fn(*(aligned_block(b) for b in blocks), *args, **kw)
        if combine is not None:
            out = r if out is None else combine(out, r)
        else:
            results.append(r)
    if combine is not None:
        return out
    return results[0] if single else results


def _as_partitions(data, ex):
    if isinstance(data, Partitions):
        return data
    if hasattr(data, "dask") and hasattr(data, "chunks"):  # a Dask array
        return persist_partitions(data, client=ex.client)
    if isinstance(data, (list, tuple)):
        handles = list(data)
        workers = list(getattr(data, "workers", [None] * len(handles)))
        if ex.distributed and any(w is None for w in workers):
            ex.wait([h for h in handles if hasattr(h, "key")])
            who = ex.client.who_has([h for h in handles if hasattr(h, "key")])
            workers = [(sorted(who.get(getattr(h, "key", None), ())) or [None])[0]
                       for h in handles]
        return Partitions(blocks=[(h,) for h in handles], workers=workers,
                          lengths=[0] * len(handles), nthreads=ex.nthreads())
    raise TypeError(
        "map_partitions takes a Dask array, the Partitions from persist_partitions, or a list "
        f"of futures; got {type(data).__name__}."
    )


def map_partitions(fn, data, *args, name="map", combine=None, group_by=None, retries=None,
                   speculative=None, with_index=False, block=True, client=None, **kwargs):
    """Run ``fn`` on every row-partition of ``data`` on the cluster.

    Parameters
    ----------
    fn : callable
        ``fn(*blocks, *args, **kwargs)`` where ``blocks`` are the partition's arrays (for data
        persisted from ``X, y`` that is ``X_i, y_i``). Must be pure and deterministic: a retried
        or speculative copy must give the same answer.
    data : Partitions, dask.array.Array or list of futures
        The partitions. A Dask array is persisted first (use :func:`persist_partitions` once
        and pass its result when mapping repeatedly).
    *args
        Extra arguments. A :class:`Replicated` value (from :func:`broadcast` or
        :func:`allreduce`) is replaced in each task by the copy held by the task's worker.
    name : str, default="map"
        Task names become ``skdml-<name>-<token>``; use ``"<algorithm>-<stage>"``, e.g.
        ``"kmeans-lloyd"``, so the dashboard reads like the algorithm.
    combine : callable, default=None
        Associative, commutative ``combine(a, b)``. When given, each task folds the results of
        its partitions into one (the local pre-reduction before :func:`tree_reduce`).
    group_by : {"worker", "partition"} or int, default=None
        ``"worker"`` (the default, from ``skdml.config``): one task per worker thread, over the
        partitions that worker holds; each task dependency hop costs milliseconds, so fewer,
        bigger tasks are cheaper. ``"partition"``: one task per partition (finer-grained, which
        gives speculation more to work with). An int ``k``: tasks of at most ``k`` partitions.
    retries : int, default=None
        How often a task that raises is retried (default from ``skdml.config``).
    speculative : bool, default=None
        Launch backup copies of straggling tasks (default from ``skdml.config``). Only on a
        distributed cluster with two or more workers; the call then returns once every task has
        a finished copy.
    with_index : bool, default=False
        Pass ``partition=i`` (the partition's index) to ``fn``, e.g. to derive seeds.
    block : bool, default=True
        A speculative stage (see ``speculative``) returns once every task has a finished copy.
        With ``False`` it returns as soon as its tasks are submitted, so that the caller can
        submit the stage that follows (a driver loop one iteration ahead) before waiting; it
        then watches for stragglers when the caller waits for it with :meth:`Parts.settle`.
        Other stages never block.
    client : distributed.Client, default=None
        By default the active Client, else Dask's threaded scheduler (no speculation).
    **kwargs
        Keyword arguments for ``fn``.

    Returns
    -------
    Parts
        One handle per task (a ``distributed.Future``, or a ``Delayed`` on the local scheduler)
        holding ``fn``'s result for the task's partitions: folded by ``combine`` when given,
        else a list of per-partition results (the result itself with ``"partition"``).
        ``Parts.workers`` and ``Parts.partitions`` say where each ran and what it covers;
        ``Parts.n_backups`` how many speculative copies were launched (known once settled).

    Examples
    --------
    >>> import dask.array as da
    >>> from skdml.parallel import map_partitions, tree_reduce
    >>> X = da.ones((100, 3), chunks=(25, 3))
    >>> sums = map_partitions(lambda b: b.sum(axis=0), X, combine=lambda a, b: a + b)
    >>> tree_reduce(sums, lambda a, b: a + b).compute()
    array([100., 100., 100.])
    """
    ex = get_executor(client)
    if not isinstance(block, bool):
        raise TypeError(f"block must be True or False; got {block!r}.")
    parts = _as_partitions(data, ex)
    group_by = _config.get("group_by") if group_by is None else group_by
    speculative = _config.get("speculative") if speculative is None else speculative
    groups = parts.groups(group_by) if ex.distributed else [
        (None, [i]) for i in range(parts.n_partitions)]
    single = group_by == "partition" or not ex.distributed
    # parts.nthreads was read when the data were persisted: no scheduler round trip here
    speculate = bool(speculative) and ex.distributed and len(parts.nthreads) > 1 \
        and len(groups) > 1
    prefix = new_name(name)

    def task_args(worker, idx):
        sub = tuple(a.for_worker(worker) if isinstance(a, Replicated) else a for a in args)
        subkw = {k: v.for_worker(worker) if isinstance(v, Replicated) else v
                 for k, v in kwargs.items()}
        return ([parts.blocks[i] for i in idx], idx, sub, subkw, combine, with_index, single)

    # No worker restrictions: every input of a group sits on the group's worker, so the
    # scheduler places the task there by data locality, and work stealing stays free to move
    # a queued task away from a straggling worker.
    arglists = [task_args(worker, idx) for worker, idx in groups]
    keys = [(prefix, j) for j in range(len(groups))]
    if speculate:
        handles = ex.submit_many(timed_call, [(_run_group, fn) + a for a in arglists],
                                 keys=keys, retries=retries)
    else:
        handles = ex.submit_many(_run_group, [(fn,) + a for a in arglists], keys=keys,
                                 retries=retries)
    workers = [w for w, _ in groups]
    if speculate:
        backup_prefix = new_name(f"{name}-backup")

        placed = {}  # backups sent to each worker in this stage (not yet seen by the scheduler)

        def make_backup(j, exclude):
            choices = [w for w in ex.nthreads() if w != exclude]
            if not choices:
                return handles[j]
            load = ex.client.processing(workers=choices)
            target = min(choices, key=lambda w: len(load.get(w, ())) + placed.get(w, 0))
            placed[target] = placed.get(target, 0) + 1
            worker, idx = groups[j]
            # The backup runs the copy of the worker's value that sits on its own worker.
            return ex.submit_pinned(_run_group, fn, *task_args(target, idx),
                                    key=(backup_prefix, j), worker=target, retries=retries,
                                    priority=100)

        result = Parts(handles, workers=workers, partitions=[idx for _, idx in groups])
        result._settle = lambda originals: run_speculative(ex, originals, make_backup)
        return result.settle() if block else result
    result = Parts(handles, workers=workers, partitions=[idx for _, idx in groups])
    if ex.distributed:
        result._settle = lambda originals: (ex.wait(originals), (originals, 0))[1]
    return result
