"""One interface over the two ways skdml runs graphs.

With a ``distributed.Client`` tasks are submitted as futures (worker restrictions, retries,
priorities, speculation). Without one, the same tasks become ``dask.delayed`` nodes computed by
Dask's threaded scheduler. Everything above this module is written once against ``Executor``.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid

import dask

from .. import _config

__all__ = ["Executor", "get_executor", "new_name"]

_counter = itertools.count()


def new_name(name):
    """A fresh task-name prefix ``skdml-<name>-<token>`` (``name`` like ``"kmeans-lloyd"``).

    The token starts with a digit, so Dask's ``key_split`` (used by the dashboard's task stream
    and progress bars) reads the name as ``skdml-<name>``.
    """
    if not name.startswith("skdml-"):
        name = f"skdml-{name}"
    return f"{name}-{next(_counter)}{uuid.uuid4().hex[:12]}"


# Futures whose release waits for the next submit (see Executor.release_after_next_submit).
_DEFERRED = []
_DEFERRED_LOCK = threading.Lock()
#: Seconds after which deferred futures are released even if nothing was submitted.
RELEASE_DELAY = 1.0


def _release_deferred(older_than=None):
    """Drop the deferred futures (only those deferred before ``older_than``, a monotonic time,
    when given: the fallback timer must not release a stage read a moment ago)."""
    with _DEFERRED_LOCK:
        if older_than is None:
            held, _DEFERRED[:] = _DEFERRED[:], []
        else:
            held = [e for e in _DEFERRED if e[0] < older_than]
            _DEFERRED[:] = [e for e in _DEFERRED if e[0] >= older_than]
    del held  # the futures' releases go out now, behind whatever was just submitted


def _release_expired():
    _release_deferred(older_than=time.monotonic() - RELEASE_DELAY + 0.01)


class NoWorkersError(RuntimeError):
    """Raised when the cluster has had no worker for longer than ``no_worker_timeout``."""


class Executor:
    """Submit tasks and wait for them, on a distributed Client or on the threaded scheduler.

    Parameters
    ----------
    client : distributed.Client or None
        ``None`` selects Dask's local threaded scheduler.
    """

    def __init__(self, client=None):
        self.client = client

    @property
    def distributed(self):
        """True when tasks run on a distributed cluster."""
        return self.client is not None

    # -- submitting -----------------------------------------------------------------------
    def submit(self, fn, *args, key, workers=None, retries=None, priority=0, **kwargs):
        """Submit ``fn(*args, **kwargs)`` under ``key``; returns a Future or a Delayed.

        ``workers`` is a preferred worker address or list of addresses (the task may still run
        elsewhere, e.g. when that worker died); ``retries`` defaults to the ``skdml.config`` setting.
        """
        if retries is None:
            retries = _config.get("retries")
        if self.client is None:
            return dask.delayed(fn, pure=False)(*args, dask_key_name=key, **kwargs)
        if isinstance(workers, str):
            workers = [workers]
        future = self.client.submit(
            fn, *args, key=key, workers=workers, allow_other_workers=workers is not None,
            retries=retries, priority=priority, pure=False, **kwargs,
        )
        _release_deferred()
        return future

    def submit_many(self, fn, arglists, *, keys, retries=None):
        """Submit ``fn(*args)`` for every ``args`` in ``arglists``, in one message.

        One message matters: a Client batches what it sends every 10 ms, so tasks submitted
        one by one can reach the scheduler in two batches, the second up to 10 ms late, and a
        stage lasts until its last task ends.

        Parameters
        ----------
        fn : callable
            The task function.
        arglists : sequence of sequences
            The positional arguments of each task.
        keys : sequence
            One task key per entry of ``arglists``.
        retries : int, default=None
            Retries per task; by default the ``skdml.config`` setting.

        Returns
        -------
        list of Future or Delayed
            One handle per task, in the order of ``arglists``.
        """
        if retries is None:
            retries = _config.get("retries")
        arglists = [tuple(a) for a in arglists]
        keys = list(keys)
        if len(keys) != len(arglists):
            raise ValueError(f"submit_many needs one key per task: got {len(keys)} keys for "
                             f"{len(arglists)} argument lists.")
        if self.client is None or not arglists:
            return [self.submit(fn, *a, key=k, retries=retries) for a, k in zip(arglists, keys)]
        # fifo_timeout as Client.submit's default: a stage is ordered like submitted tasks
        futures = self.client.map(fn, *zip(*arglists), key=list(keys), retries=retries,
                                  pure=False, fifo_timeout="60s")
        _release_deferred()
        return futures

    def release_after_next_submit(self, handles):
        """Keep ``handles`` (futures the caller is done with) alive until the next submit, or
        for ``RELEASE_DELAY`` (1) seconds if none comes; a no-op on the threaded scheduler.

        Parameters
        ----------
        handles : sequence of Future
            Futures whose results the caller has read.

        Notes
        -----
        A driver loop drops the last stage's futures just before it submits the next stage.
        Their release is a message too, and the Client sends at most one batch of messages per
        10 ms: released first, the next stage's tasks reach the scheduler up to 10 ms late
        (measured: half the Lloyd passes of a KMeans fit started 10 ms late). Released after
        the submit, the release waits instead, and nothing waits for it.
        """
        if self.client is None or not handles:
            return
        with _DEFERRED_LOCK:
            _DEFERRED.append((time.monotonic(), list(handles)))
        loop = self.client.loop
        loop.add_callback(loop.call_later, RELEASE_DELAY, _release_expired)

    def free_workers(self):
        """Workers to prefer for follow-up tasks: ``None`` (any) unless some worker is still
        running the losing copy of a speculated task, in which case the others."""
        if self.client is None:
            return None
        from ._speculation import busy_workers

        busy = busy_workers(self)
        if not busy:
            return None
        free = [w for w in self.client.nthreads() if w not in busy]
        return free or None

    def submit_pinned(self, fn, *args, key, worker, retries=None, priority=0, **kwargs):
        """Like :meth:`submit` but the task may run only on ``worker`` (backup copies)."""
        if retries is None:
            retries = _config.get("retries")
        future = self.client.submit(
            fn, *args, key=key, workers=[worker], allow_other_workers=False,
            retries=retries, priority=priority, pure=False, **kwargs,
        )
        _release_deferred()
        return future

    # -- cluster facts --------------------------------------------------------------------
    def nthreads(self):
        """``{worker address: threads}``; one pseudo-worker ``None`` on the local scheduler."""
        if self.client is None:
            return {None: 1}
        return self.client.nthreads()

    # -- waiting --------------------------------------------------------------------------
    def wait(self, handles, *, return_when="ALL_COMPLETED", timeout=None):
        """Block until ``handles`` are finished, raising :class:`NoWorkersError` rather than
        waiting forever when the cluster has no workers left.

        With ``return_when="FIRST_COMPLETED"`` and ``timeout`` set, returns after at most
        ``timeout`` seconds even if nothing finished.
        """
        if self.client is None or not handles:
            return
        from distributed import wait as dwait

        limit = float(_config.get("no_worker_timeout"))
        step = min(1.0, limit) if timeout is None else min(timeout, 1.0, limit)
        start = time.monotonic()
        no_workers_since = None
        while True:
            try:
                with self.client.as_current():  # the client given, not only the default one
                    dwait(handles, timeout=step, return_when=return_when)
                return
            except TimeoutError as exc:
                _forget_frames(exc)
            if timeout is not None and time.monotonic() - start >= timeout:
                return
            if not self.client.nthreads():
                now = time.monotonic()
                no_workers_since = no_workers_since or now
                if now - no_workers_since >= limit:
                    raise NoWorkersError(
                        f"The Dask cluster at {self.client.scheduler.address} has had no "
                        f"workers for {limit:.0f} s, so the computation cannot finish. Start "
                        "workers (or restart the cluster) and call again; the waiting limit is "
                        "skdml.config 'no_worker_timeout'."
                    )
            else:
                no_workers_since = None

    def gather(self, handles):
        """Results of ``handles`` (a handle or a list of handles) on the client."""
        single = not isinstance(handles, (list, tuple))
        items = [handles] if single else list(handles)
        if self.client is None:
            out = list(dask.compute(*items, scheduler="threads"))
        else:
            self.wait(items)
            out = self.client.gather(items)
        return out[0] if single else out

    def cancel(self, handles):
        """Release futures that are no longer needed (no-op for Delayed)."""
        if self.client is not None and handles:
            self.client.cancel(list(handles))


def _forget_frames(exc):
    """Drop the tracebacks of a caught ``exc`` and of the exceptions it chains.

    ``distributed.wait`` times out by raising from inside ``distributed.utils.sync``, whose
    frame keeps the exception it raises: exception, traceback and frame form a cycle. The
    traceback also holds the waiting frame (with ``self`` and ``handles``), so without this the
    futures waited on would live until the next garbage collection instead of being released
    the moment the caller drops them.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def get_executor(client=None):
    """The :class:`Executor` for ``client``, or for the active Client (``None``: threads)."""
    if client is None:
        from .._runtime import get_client

        client = get_client()
    return Executor(client)
