"""Tree reductions, allreduce and broadcast of small model state."""
from __future__ import annotations

import functools
import operator

import dask
import numpy as np

from .. import _config
from ._executor import get_executor, new_name
from ._map import Replicated
from ._partitions import Partitions

__all__ = ["tree_reduce", "aggregate", "allreduce", "broadcast"]


# -- helpers run inside tasks ------------------------------------------------------------------
def _fold(combine, *values):
    return functools.reduce(combine, values)


def _identity(x):
    return x


def _fold_scaled(combine, scale, *values):
    """``combine`` over ``values`` in the given order, divided by ``scale`` unless it is 1."""
    total = functools.reduce(combine, values)
    return total if scale == 1 else _scale(total, scale)


#: An unsharded allreduce lets every worker fold all the workers' partials itself (one task
#: hop) on two workers, and on up to FOLD_MAX_WORKERS workers for values of at most
#: FOLD_MAX_BYTES; otherwise a tree then a broadcast (two hops, but W - 1 folds instead of
#: W (W - 1), and 2 (W - 1) transfers instead of W (W - 1)). Measured in benchmarks/RESULTS.md:
#: on 2 workers the fold was faster or as fast in 14 of 16 cases; on 4 workers (of a 2-core
#: machine) as fast up to 0.8 MB and slower from 8 MB.
FOLD_MAX_WORKERS = 8
FOLD_MAX_BYTES = 2**20


def _leaves(value):
    """Flatten a pytree of dicts / tuples / lists / arrays into (leaves, rebuild)."""
    if isinstance(value, dict):
        keys = list(value)
        subs = [_leaves(value[k]) for k in keys]
        n = [len(s[0]) for s in subs]

        def rebuild(leaves):
            out, pos = {}, 0
            for k, (_, rb), m in zip(keys, subs, n):
                out[k] = rb(leaves[pos:pos + m])
                pos += m
            return out

        return [leaf for s in subs for leaf in s[0]], rebuild
    if isinstance(value, (tuple, list)):
        subs = [_leaves(v) for v in value]
        n = [len(s[0]) for s in subs]
        kind = type(value)

        def rebuild(leaves):
            out, pos = [], 0
            for (_, rb), m in zip(subs, n):
                out.append(rb(leaves[pos:pos + m]))
                pos += m
            return kind(out)

        return [leaf for s in subs for leaf in s[0]], rebuild
    return [value], lambda leaves: leaves[0]


def _shard_bounds(size, j, n):
    step = -(-size // n)
    return min(j * step, size), min((j + 1) * step, size)


def _take_shard(value, j, n):
    """Shard ``j`` of ``n`` of a pytree: each leaf flattened and cut into n contiguous pieces."""
    leaves, rebuild = _leaves(value)
    out = []
    for leaf in leaves:
        flat = leaf.reshape(-1) if hasattr(leaf, "reshape") else np.asarray(leaf).reshape(-1)
        lo, hi = _shard_bounds(flat.shape[0], j, n)
        out.append(flat[lo:hi])
    return rebuild(out)


def _reduce_shard(op, local, j, n, scale, *others):
    own = _take_shard(local, j, n)
    out = functools.reduce(op, others, own) if others else own
    if scale != 1:
        out = _scale(out, scale)
    return out


def _scale(value, factor):
    leaves, rebuild = _leaves(value)
    return rebuild([leaf / factor for leaf in leaves])


def _assemble(template, *shards):
    """Put the reduced shards back into the shape of ``template`` (the local partial)."""
    t_leaves, rebuild = _leaves(template)
    s_leaves = [_leaves(s)[0] for s in shards]
    out = []
    for k, leaf in enumerate(t_leaves):
        pieces = [s[k] for s in s_leaves]
        xp = _namespace(leaf)
        flat = xp.concat(pieces) if hasattr(xp, "concat") else xp.concatenate(pieces)
        out.append(xp.reshape(flat, getattr(leaf, "shape", ())) if hasattr(leaf, "shape")
                   else flat[0])
    return rebuild(out)


def _namespace(leaf):
    from .._backend import get_namespace

    return get_namespace(leaf if hasattr(leaf, "shape") else np.asarray(leaf))


def _leafwise(fn):
    def op(a, b):
        la, rebuild = _leaves(a)
        lb, _ = _leaves(b)
        return rebuild([fn(x, y) for x, y in zip(la, lb)])

    return op


def _resolve_op(op):
    if callable(op):
        return op
    if op == "sum" or op == "mean":
        return _leafwise(operator.add)
    if op == "max":
        return _leafwise(lambda x, y: _namespace(x).maximum(x, y))
    if op == "min":
        return _leafwise(lambda x, y: _namespace(x).minimum(x, y))
    raise ValueError(f"op must be 'sum', 'mean', 'max', 'min' or a callable; got {op!r}.")


# -- public API --------------------------------------------------------------------------------
def tree_reduce(parts, combine, *, split_every=None, name="reduce", client=None):
    """Reduce partial results in a tree of fan-in ``split_every``.

    Parameters
    ----------
    parts : list of Future or Delayed
        Partial results, e.g. from :func:`map_partitions`.
    combine : callable
        Associative and commutative ``combine(a, b)``; it may be applied in any grouping and
        order. Values may be arrays, or tuples / dicts of arrays (sums, counts, Gram matrices).
    split_every : int, default=None
        Fan-in of each node (at least 2; default from ``skdml.config``, 8). The tree has depth
        ``ceil(log_split_every(len(parts)))``; it is never a linear chain.
    name : str, default="reduce"
        Task names become ``skdml-<name>-<token>``.
    client : distributed.Client, default=None
        By default the active Client, else Dask's threaded scheduler.

    Returns
    -------
    Future or Delayed
        The reduced value, still lazy (``.result()`` / ``.compute()`` to fetch it).

    Examples
    --------
    >>> import dask
    >>> from skdml.parallel import tree_reduce
    >>> parts = [dask.delayed(i) for i in range(10)]
    >>> tree_reduce(parts, lambda a, b: a + b, split_every=3).compute()
    45
    """
    split_every = _check_split_every(split_every)
    handles = list(parts)
    if not handles:
        raise ValueError("tree_reduce needs at least one partial result; got none.")
    ex = get_executor(client)
    free = ex.free_workers()
    level = 0
    prefix = new_name(name)
    while len(handles) > 1:
        nxt = []
        for j in range(0, len(handles), split_every):
            group = handles[j:j + split_every]
            if len(group) == 1:
                nxt.append(group[0])
                continue
            nxt.append(ex.submit(_fold, combine, *group, key=(prefix, level, j // split_every),
                                 workers=free))
        handles = nxt
        level += 1
    return handles[0]


def aggregate(parts, combine, *, split_every=None, name="reduce", client=None):
    """Tree-reduce ``parts`` and bring the result to the client.

    The tree's upper levels run on the cluster until at most ``split_every`` values are left;
    those are gathered and combined on the client, which saves one task hop per call (the
    driver-loop pattern: map, reduce, read the small result).

    Parameters
    ----------
    parts, combine, split_every, name, client
        As in :func:`tree_reduce`.

    Returns
    -------
    object
        The reduced value, on the client.

    Examples
    --------
    >>> import dask
    >>> from skdml.parallel import aggregate
    >>> aggregate([dask.delayed(i) for i in range(5)], max)
    4
    """
    split_every = _check_split_every(split_every)
    handles = list(parts)
    if not handles:
        raise ValueError("aggregate needs at least one partial result; got none.")
    ex = get_executor(client)
    if len(handles) > split_every:
        # reduce on the cluster to <= split_every values: a tree whose root is the client
        groups = -(-len(handles) // split_every)
        prefix = new_name(name)
        size = -(-len(handles) // groups)
        free = ex.free_workers()
        handles = [
            ex.submit(_fold, combine, *handles[j:j + size], key=(prefix, 0, j // size),
                      workers=free)
            if len(handles[j:j + size]) > 1 else handles[j]
            for j in range(0, len(handles), size)
        ]
        if len(handles) > split_every:
            handles = [tree_reduce(handles, combine, split_every=split_every, name=name,
                                   client=client)]
    values = ex.gather(handles)
    ex.release_after_next_submit(list(parts) + handles)
    return functools.reduce(combine, values)


def _check_split_every(split_every):
    split_every = _config.get("split_every") if split_every is None else split_every
    if not isinstance(split_every, (int, np.integer)) or isinstance(split_every, bool) \
            or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2; got {split_every!r}.")
    return int(split_every)


def _locations(parts, ex):
    """(handles, workers) for a Parts / Partitions / list of handles."""
    if isinstance(parts, Partitions):
        return [b[0] for b in parts.blocks], list(parts.workers)
    handles = list(parts)
    workers = list(getattr(parts, "workers", [None] * len(handles)))
    if ex.distributed and any(w is None for w in workers):
        keyed = [h for h in handles if hasattr(h, "key")]
        ex.wait(keyed)  # a future's worker is known once it has run
        who = ex.client.who_has(keyed) if keyed else {}
        workers = [(sorted(who.get(getattr(h, "key", None), ())) or [None])[0] for h in handles]
    return handles, workers


def broadcast(value, parts=None, *, name="broadcast", client=None):
    """Put one copy of ``value`` on each worker that holds ``parts``.

    Parameters
    ----------
    value : object or Future
        A small value on the client (model state), or a future already on the cluster.
    parts : Partitions, Parts or list of Future, default=None
        The partitions that will use the value; by default every worker of the cluster.
    name : str, default="broadcast"
        Task names become ``skdml-<name>-<token>``.
    client : distributed.Client, default=None
        By default the active Client, else Dask's threaded scheduler.

    Returns
    -------
    Replicated
        ``{worker: handle}``. Passed to :func:`map_partitions`, each task gets its worker's
        copy. The copies are tasks (not ``scatter``), so a copy lost with its worker is
        recreated elsewhere.

    Examples
    --------
    >>> from skdml.parallel import broadcast
    >>> copies = broadcast({"w": 1.0})
    >>> copies.any().compute()
    {'w': 1.0}
    """
    ex = get_executor(client)
    if not ex.distributed:
        if hasattr(value, "key") or hasattr(value, "dask"):
            return Replicated({None: value})
        return Replicated({None: dask.delayed(value, name=new_name(name), pure=False)})
    if parts is None:
        workers = list(ex.nthreads())
    else:
        workers = sorted({w for w in _locations(parts, ex)[1]}, key=str)
    return _broadcast_to(ex, value, workers, name)


def _broadcast_to(ex, value, workers, name):
    key = new_name(name)
    return Replicated({w: ex.submit(_identity, value, key=(key, str(w)), workers=w)
                       for w in workers})


def allreduce(parts, op="sum", *, name="allreduce", nbytes=None, shard=None, client=None):
    """Reduce ``parts`` so that every worker holding one ends up with the result.

    Worker-aware: each worker first folds its own parts (one task per worker); then either the
    workers exchange shards (reduce-scatter, then all-gather: each worker sends and receives
    about ``2 (W-1)/W`` of the value's size, whatever the number of workers ``W``), or, for
    small values where sharding costs more task hops than it saves bytes, every worker folds
    all the workers' partials itself (one task hop; on two workers, or on up to
    :data:`FOLD_MAX_WORKERS` workers for values of at most :data:`FOLD_MAX_BYTES`), or the
    partials are tree-reduced and the result broadcast. Nothing passes through the client.

    Parameters
    ----------
    parts : Parts, Partitions or list of Future
        Partial values (arrays, or tuples / dicts of arrays of the same shapes).
    op : {"sum", "mean", "max", "min"} or callable, default="sum"
        The reduction. ``"mean"`` divides the sum by ``len(parts)``. A callable must be
        associative and commutative, and act element by element on the leaves to be sharded
        (pass ``shard=False`` otherwise).
    name : str, default="allreduce"
        Task names become ``skdml-<name>-<stage>-<token>``.
    nbytes : int, default=None
        Size of the value in bytes, when known (e.g. a model's size), to choose the path
        without asking the cluster (on three or more workers an unknown size is asked for when
        ``shard`` is None, and counts as large otherwise).
    shard : bool, default=None
        Force (True) or forbid (False) the sharded exchange; by default it is used when the
        value is at least ``skdml.config`` ``allreduce_shard_threshold`` bytes and there are
        at least three workers (with two, sharding moves the same bytes per worker and costs
        one more task hop).
    client : distributed.Client, default=None
        By default the active Client, else Dask's threaded scheduler.

    Returns
    -------
    Replicated
        ``{worker: handle to the reduced value on that worker}``; pass it to
        :func:`map_partitions` so each task uses its own worker's copy. On the small-value
        (fold) path the consumers' tasks fold the partials themselves, and a worker's copy is
        computed when it is asked for (``result[worker]``, ``values()``, ``any()``), so read
        copies through these, not by passing the mapping itself to other Dask calls.

    Examples
    --------
    >>> import dask, numpy as np
    >>> from skdml.parallel import allreduce
    >>> parts = [dask.delayed(np.full(3, float(i))) for i in range(4)]
    >>> allreduce(parts, op="mean").any().compute()
    array([1.5, 1.5, 1.5])
    """
    ex = get_executor(client)
    handles, workers = _locations(parts, ex)
    if not handles:
        raise ValueError("allreduce needs at least one partial value; got none.")
    combine = _resolve_op(op)
    scale = len(handles) if op == "mean" else 1
    local_name = new_name(f"{name}-local")
    if not ex.distributed:
        total = tree_reduce(handles, combine, name=f"{name}-local", client=client)
        if scale != 1:
            total = ex.submit(_scale, total, scale, key=new_name(f"{name}-mean"))
        return Replicated({None: total})
    # 1. each worker folds its own parts: one task per worker
    by_worker = {}
    for h, w in zip(handles, workers):
        by_worker.setdefault(w, []).append(h)
    order = sorted(by_worker, key=str)
    local = {}
    for w in order:
        hs = by_worker[w]
        local[w] = hs[0] if len(hs) == 1 else ex.submit(
            _fold, combine, *hs, key=(local_name, str(w)), workers=w)
    n = len(order)
    if shard is None:
        # With two workers sharding moves the same bytes per worker as tree + broadcast and
        # costs one more task hop (benchmarks/RESULTS.md), so it starts at three workers.
        if nbytes is None and n > 2:
            nbytes = _nbytes_of(ex, list(local.values()))
        shard = n > 2 and nbytes >= _config.get("allreduce_shard_threshold")
    fold = n == 2 or (n <= FOLD_MAX_WORKERS and nbytes is not None and nbytes <= FOLD_MAX_BYTES)
    if not shard and fold:
        # every worker folds the W partials, in the same order (so to the same bits): one
        # task hop instead of a tree's and a broadcast's, and no worker moves more bytes than
        # the tree's root would (W - 1 partials in, its own out to the W - 1 others)
        # The fold itself is left to the value's consumers: a map_partitions task folds the
        # partials before it runs, without a task hop of its own (see Replicated).
        return Replicated._folded_by_consumers(
            ex, _fold_scaled, (combine, scale, *[local[v] for v in order]), order,
            new_name(f"{name}-fold"))
    if not shard or n == 1:
        root = tree_reduce([local[w] for w in order], combine, name=f"{name}-tree",
                           client=client)
        if scale != 1:
            root = ex.submit(_scale, root, scale, key=new_name(f"{name}-mean"))
        if n == 1:
            return Replicated({order[0]: root})
        return _broadcast_to(ex, root, order, f"{name}-bcast")
    # 2. reduce-scatter: worker j owns shard j; it receives shard j of every other partial
    shard_name = new_name(f"{name}-shard")
    rs_name = new_name(f"{name}-scatter")
    ag_name = new_name(f"{name}-gather")
    pieces = {}
    for i, wi in enumerate(order):
        for j, wj in enumerate(order):
            if i != j:
                pieces[i, j] = ex.submit(_take_shard, local[wi], j, n,
                                         key=(shard_name, i, j), workers=wi)
    reduced = [
        ex.submit(_reduce_shard, combine, local[wj], j, n, scale,
                  *[pieces[i, j] for i in range(n) if i != j],
                  key=(rs_name, j), workers=wj)
        for j, wj in enumerate(order)
    ]
    # 3. all-gather: every worker assembles the full value from the n reduced shards
    out = Replicated()
    for i, wi in enumerate(order):
        out[wi] = ex.submit(_assemble, local[wi], *reduced, key=(ag_name, i), workers=wi)
    return out


def _nbytes_of(ex, handles):
    """Sizes the scheduler knows for finished futures; 0 (tree path) for unfinished ones."""
    ex.wait(handles)

    def sizes(dask_scheduler, keys):
        return [getattr(dask_scheduler.tasks.get(k), "nbytes", 0) or 0 for k in keys]

    return max(ex.client.run_on_scheduler(sizes, keys=[h.key for h in handles]))
