"""Speculative backup tasks for stragglers (Dask never duplicates a running task).

Semantics follow Spark's ``spark.speculation``: once a quantile of a stage's tasks has finished,
a task that has been *executing* longer than ``multiplier`` x the median duration of the finished
ones gets a copy on another worker; the first copy to finish wins and the other is cancelled.

Execution times are read on the workers: every task of a speculative stage runs through
:func:`timed_call`, which notes when it started and ended in a small per-process registry. The
client asks the workers for it only after the quantile is reached, so a stage with no straggler
pays nothing but the registry's two dictionary writes per task.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import OrderedDict

from .. import _config

__all__ = ["timed_call", "run_speculative"]

_REGISTRY: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_MAX_ENTRIES = 20_000


def timed_call(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)``, noting on this worker when the current task ran."""
    key = None
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
        addr = worker.address
    except Exception:  # not on a distributed worker
        addr = None
    start = time.time()
    if key is not None:
        with _LOCK:
            _REGISTRY[key] = [start, None, addr]
            while len(_REGISTRY) > _MAX_ENTRIES:
                _REGISTRY.popitem(last=False)
    try:
        return fn(*args, **kwargs)
    finally:
        if key is not None:
            with _LOCK:
                entry = _REGISTRY.get(key)
                if entry is not None:
                    entry[1] = time.time()


def _task_times(keys):
    """On a worker: ``{key: (elapsed_or_duration, finished, worker)}`` for the given keys."""
    now = time.time()
    out = {}
    with _LOCK:
        for k in keys:
            e = _REGISTRY.get(k)
            if e is not None:
                start, end, addr = e
                out[k] = ((end if end is not None else now) - start, end is not None, addr)
    return out


# Workers still executing a copy that lost the race: Python threads cannot be interrupted, so
# such a worker has one thread busy for a while. Follow-up tasks avoid it while it is.
_ABANDONED = {}


def _abandon(worker, key):
    if worker is not None:
        with _LOCK:
            _ABANDONED[worker] = (key, time.monotonic())


def _running(keys, dask_worker=None):
    return [k for k in keys if k in dask_worker.active_keys]


def busy_workers(ex):
    """Workers still running an abandoned (losing) copy of a task; asks them only when the
    driver has abandoned any copy, so it costs nothing in the common case."""
    with _LOCK:
        pending = dict(_ABANDONED)
    if not pending or not ex.distributed:
        return set()
    alive = set(ex.client.nthreads())
    targets = [w for w in pending if w in alive]
    running = ex.client.run(_running, [pending[w][0] for w in targets], workers=targets) \
        if targets else {}
    busy = {w for w in targets if pending[w][0] in running.get(w, [])}
    with _LOCK:
        for w in pending:
            if w not in busy and _ABANDONED.get(w) == pending[w]:
                del _ABANDONED[w]
    return busy


def run_speculative(ex, originals, make_backup, *, quantile=None, multiplier=None,
                    interval=None, min_duration=None):
    """Wait for a stage of futures, launching backup copies of stragglers.

    Parameters
    ----------
    ex : Executor
        A distributed executor.
    originals : list of Future
        One future per task of the stage; each must run through :func:`timed_call`.
    make_backup : callable
        ``make_backup(i, exclude_worker) -> Future`` submits a copy of task ``i`` on a worker
        other than ``exclude_worker`` (``None`` when no other worker exists).

    Returns
    -------
    winners : list of Future
        For each task, the copy that finished first (the other copy is cancelled).
    n_backups : int
        How many backup copies were launched.
    """
    quantile = _config.get("speculation_quantile") if quantile is None else quantile
    multiplier = _config.get("speculation_multiplier") if multiplier is None else multiplier
    interval = _config.get("speculation_interval") if interval is None else interval
    min_duration = (_config.get("speculation_min_duration") if min_duration is None
                    else min_duration)
    n = len(originals)
    # Fast path: tasks shorter than min_duration are never backed up, so wait for the whole
    # stage that long first; a stage with no straggler costs exactly one ordinary wait.
    ex.wait(list(originals), timeout=min_duration)
    if all(f.done() for f in originals) and all(f.status == "finished" for f in originals):
        return list(originals), 0
    copies = {i: [f] for i, f in enumerate(originals)}
    winners = [None] * n
    undecided = set(range(n))
    # Spark's rule: speculation starts once floor(quantile * n) tasks finished (at least one).
    threshold = max(1, int(quantile * n))
    n_backups = 0
    times = {}
    last_check = 0.0
    while undecided:
        live = [f for i in undecided for f in copies[i] if not f.done()]
        started = n > len(undecided)  # at least one task finished: a median exists
        if live:
            ex.wait(live, return_when="FIRST_COMPLETED", timeout=interval if started else None)
        for i in list(undecided):
            done = [f for f in copies[i] if f.done()]
            ok = [f for f in done if f.status == "finished"]
            if ok:
                winners[i] = ok[0]
                undecided.discard(i)
                losers = [f for f in copies[i] if f is not ok[0]]
                for f in losers:
                    info = times.get(f.key) if f is originals[i] else None
                    if info is not None:
                        _abandon(info[2], f.key)
                ex.cancel(losers)
            elif done and len(done) == len(copies[i]):
                # every copy failed: surface the task's own exception
                ex.cancel([f for j in undecided for f in copies[j] if j != i])
                done[0].result()
        n_done = n - len(undecided)
        now = time.monotonic()
        if not undecided or n_done == 0 or now - last_check < interval:
            continue
        last_check = now
        # Ask the workers how long each task has been executing (and how long finished ones took).
        keys = [f.key for f in originals]
        times = {}
        for per_worker in ex.client.run(_task_times, keys).values():
            times.update(per_worker)
        durations = [times[k][0] for k in keys if k in times and times[k][1]]
        if not durations:
            continue
        median = statistics.median(durations)
        limit = max(multiplier * median, min_duration)
        # Poll less often for long tasks: a tenth of their median duration.
        interval = max(interval, 0.1 * median)
        slow = {i: times[originals[i].key] for i in undecided if len(copies[i]) == 1
                and originals[i].key in times and not times[originals[i].key][1]
                and times[originals[i].key][0] > limit}
        if not slow:
            continue
        processing = ex.client.processing()
        # Spark's rule (quantile of the stage finished), or: a thread is idle while a task
        # straggles. Dask assigns tasks to workers ahead of time, so tasks queued behind a
        # straggler cannot finish and the quantile alone might never be reached.
        idle = any(not ks for ks in processing.values())
        if n_done < threshold and not idle:
            continue
        slow_workers = set()
        for i, info in slow.items():
            slow_workers.add(info[2])
            copies[i].append(make_backup(i, info[2]))
            n_backups += 1
        # Tasks queued behind a straggler on its worker would wait for it: copy them too.
        for w in slow_workers:
            queued = set(processing.get(w, ()))
            for i in sorted(undecided):
                k = originals[i].key
                if len(copies[i]) == 1 and k in queued and k not in times:
                    copies[i].append(make_backup(i, w))
                    n_backups += 1
    return winners, n_backups
