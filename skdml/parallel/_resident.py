"""Worker-resident loops: many rounds in one long task per worker thread, the round's partial
results combined among the workers themselves.

A driver loop (:func:`~skdml.parallel.run_step` around :func:`map_partitions` and
:func:`allreduce`) costs the scheduler and the client a few task transitions, messages and
transfers every round. When a round's kernel takes a few tens of milliseconds, that is a large
part of the round (measured on two cores: a float32 Lloyd iteration of 2,000,000 x 32 rows takes
43 ms as a driver loop and 28 ms resident, its kernel alone 23 ms). Here every worker thread
holding partitions runs one task for all the rounds, and the members of the loop send each
round's partial value straight to each other (worker to worker, through a handler that
:class:`ExchangePlugin` installs on every worker): the scheduler sees one task per thread for
the whole loop.

What this gives up, and how it is made safe:

* no speculation and no retry of a single round: a member that dies, or a peer that does not
  answer, ends the loop for every member (:class:`ResidentLoopAborted`); the caller then goes on
  with its driver loop from the last state it knows, which has all of the engine's fault
  tolerance. Each member checks a silent peer's liveness every
  :data:`PING_INTERVAL` seconds and gives up on one that is alive but silent after the
  ``timeout`` setting ``resident_timeout`` (a peer whose worker is busy with other work);
* every member combines the same values in the same order (by rank), so all members see the
  same bits and take the same decisions without asking anyone;
* a member leaves its worker's thread pool once it starts (distributed's ``secede``), so two
  loops that share workers (two fits at once) never wait for a thread that the other loop's
  member holds while it waits in turn.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid

import dask

from .. import _config
from ._driver import CLUSTER_ERRORS
from ._executor import get_executor, new_name

__all__ = ["Collective", "ExchangePlugin", "ResidentLoopAborted", "run_resident"]

logger = logging.getLogger("skdml")

#: Seconds a member waits for a peer's value before checking that the peer's worker is alive.
PING_INTERVAL = 0.5
#: Name of the worker plugin (and of its handler) that receives the members' values.
_PLUGIN = "skdml-exchange"
_HANDLER = "skdml_exchange"
#: Round number of the message that calls a loop off.
_ABORT = "abort"
#: How the call-off message of a member that raised begins.
_FAILED = "an error in member"


class ResidentLoopAborted(RuntimeError):
    """A member of a resident loop died or a peer stopped answering: the loop ended early."""


class _Aborted:
    """What a member returns when it gave up (the client raises ResidentLoopAborted)."""

    def __init__(self, reason):
        self.reason = reason


class _Mailbox:
    """Values received by one worker, by (loop, round, sender rank)."""

    def __init__(self):
        self.values = {}
        self.cond = threading.Condition()

    def put(self, key, value):
        with self.cond:
            self.values[key] = value
            self.cond.notify_all()

    def take(self, key, timeout):
        """The value under ``key``, or KeyError after ``timeout`` seconds without it;
        ResidentLoopAborted once the loop ``key[0]`` has been called off."""
        deadline = time.monotonic() + timeout
        abort = (key[0], _ABORT)
        with self.cond:
            while key not in self.values:
                if abort in self.values:
                    raise ResidentLoopAborted(self.values[abort])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KeyError(key)
                self.cond.wait(left)
            return self.values.pop(key)

    def drop(self, loop, rank):
        """Forget what is left for member ``rank`` of loop ``loop`` (other members of the loop
        may share this mailbox and still be reading theirs)."""
        with self.cond:
            for key in [k for k in self.values if k[0] == loop and k[-1] == rank]:
                del self.values[key]


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a dependency
    WorkerPlugin = object


class ExchangePlugin(WorkerPlugin):
    """Installs on each worker the mailbox and the handler through which the members of a
    resident loop send each other their values (registered once per client, and by Dask on
    every worker that joins later)."""

    name = _PLUGIN

    def setup(self, worker):
        if not hasattr(worker, "_skdml_mailbox"):
            worker._skdml_mailbox = _Mailbox()
        box = worker._skdml_mailbox

        async def receive(comm=None, key=None, value=None):
            box.put(tuple(key), value)
            return "OK"

        worker.handlers[_HANDLER] = receive


class Collective:
    """What a resident loop's function gets to talk to the other members.

    Attributes
    ----------
    rank : int
        This member's place among the members (0 .. size - 1).
    size : int
        The number of members.
    partitions : list of int
        The indices (in the ``Partitions``) of this member's partitions, in the order of its
        ``blocks``.
    """

    def __init__(self, loop, rank, addresses, timeout, partitions=()):
        self.loop_id = loop
        self.rank = rank
        self.partitions = list(partitions)
        self.size = len(addresses)
        self._addresses = addresses
        self._timeout = timeout
        self._round = itertools.count()
        self._worker = None

    # -- transport (on a worker) -------------------------------------------------------------
    def _send(self, rank, key, value):
        from distributed.protocol import to_serialize
        from distributed.utils import sync

        worker = self._worker
        if self._addresses[rank] == worker.address:
            worker._skdml_mailbox.put(key, value)
            return
        try:
            sync(worker.loop, worker.rpc(self._addresses[rank]).skdml_exchange,
                 key=list(key), value=to_serialize(value))
        except Exception as exc:  # noqa: BLE001 - the peer is gone or unreachable
            raise ResidentLoopAborted(
                f"member {rank} ({self._addresses[rank]}) of resident loop {self.loop_id} "
                f"could not be reached: {exc!r}") from None

    def _alive(self, rank):
        from distributed.utils import sync

        worker = self._worker
        if self._addresses[rank] == worker.address:
            return True

        async def ping():
            return await asyncio.wait_for(
                worker.rpc(self._addresses[rank]).identity(), PING_INTERVAL * 4)

        try:
            sync(worker.loop, ping)
            return True
        except Exception:  # noqa: BLE001 - any failure to answer means gone
            return False

    def _receive(self, rank, key):
        box = self._worker._skdml_mailbox
        waited = 0.0
        while True:
            try:
                return box.take(key, PING_INTERVAL)
            except KeyError:
                waited += PING_INTERVAL
                if not self._alive(rank):
                    raise ResidentLoopAborted(
                        f"member {rank} ({self._addresses[rank]}) of resident loop "
                        f"{self.loop_id} is gone") from None
                if waited >= self._timeout:
                    raise ResidentLoopAborted(
                        f"member {rank} ({self._addresses[rank]}) of resident loop "
                        f"{self.loop_id} sent nothing for {waited:.0f} s (resident_timeout)"
                    ) from None

    # -- the collective operation ------------------------------------------------------------
    def allreduce(self, value, op):
        """``op`` folded over every member's ``value``, in rank order, on every member.

        ``op(a, b)`` must be associative; every member gets the same bits. Each member sends
        its value to every other member, so each sends and receives ``size - 1`` copies: meant
        for small model state (callers keep large values on three or more workers to
        :func:`~skdml.parallel.allreduce`, whose sharded path moves about twice the value).
        """
        r = next(self._round)
        for rank in range(self.size):
            if rank != self.rank:  # keyed by receiver too: members may share a mailbox
                self._send(rank, (self.loop_id, r, self.rank, rank), value)
        total = None
        for rank in range(self.size):
            v = value if rank == self.rank else self._receive(
                rank, (self.loop_id, r, rank, self.rank))
            total = v if total is None else op(total, v)
        return total


def _member_task(fn, blocks, loop, rank, addresses, timeout, args, kwargs, partitions=()):
    """One member of a resident loop (runs on a worker). A member that fails calls the loop
    off on the others, so that none waits for it."""
    from distributed import get_worker, secede

    comm = Collective(loop, rank, addresses, timeout, partitions)
    comm._worker = get_worker()
    if not hasattr(comm._worker, "_skdml_mailbox"):  # pragma: no cover - plugin not there
        return _Aborted("the skdml exchange plugin is not installed on this worker")
    # leave the worker's thread pool: a member waits for the others, and two loops sharing
    # the workers (two fits at once) must not each hold a thread the other's member needs
    secede()
    try:
        return fn(blocks, comm, *args, **kwargs)
    except ResidentLoopAborted as exc:
        return _Aborted(str(exc))
    except BaseException as exc:
        for peer in range(comm.size):
            if peer != rank:
                try:
                    comm._send(peer, (loop, _ABORT), f"{_FAILED} {rank}: {exc!r}")
                except ResidentLoopAborted:
                    pass
        raise
    finally:
        comm._worker._skdml_mailbox.drop(loop, rank)


async def _call_off(loop, reason, dask_worker=None):
    """Call the loop ``loop`` off on this worker (run by the client on the members' workers)."""
    box = getattr(dask_worker, "_skdml_mailbox", None)
    if box is not None:
        box.put((loop, _ABORT), reason)


_REGISTERED = {}
_LOCK = threading.Lock()


def _ensure_plugin(client):
    """Register :class:`ExchangePlugin` with ``client``'s scheduler once per client."""
    key = (id(client), client.scheduler.address)
    with _LOCK:
        if _REGISTERED.get(key):
            return
        client.register_plugin(ExchangePlugin(), name=_PLUGIN)
        _REGISTERED[key] = True


def _members(parts):
    """``[(worker, [partition indices])]``: one member per worker thread holding partitions,
    the partitions of a worker dealt round robin to its threads (as ``group_by="worker"``)."""
    return [(w, list(idx)) for w, idx in parts.groups("worker")]


def run_resident(parts, fn, *args, name="resident", client=None, **kwargs):
    """Run ``fn(blocks, comm, *args, **kwargs)`` once on every worker thread holding
    partitions of ``parts``, all at the same time, and return their results in rank order.

    ``blocks`` is the list of the member's partitions (each a tuple of its blocks, as in
    :func:`map_partitions`), ``comm`` a :class:`Collective` whose ``allreduce`` combines a
    value across the members (``comm.partitions``: the partitions' indices). ``fn`` must
    take the same decisions on every member from the values it combines, so that all members
    run the same rounds.

    Parameters
    ----------
    parts : Partitions
        Persisted partitions, with the workers that hold them known.
    fn : callable
        The loop; it must be importable on the workers (module level).
    name : str, default="resident"
        Task names become ``skdml-<name>-<token>``.
    client : distributed.Client, default=None
        By default the active Client.

    Returns
    -------
    list
        ``fn``'s result on each member, by rank.

    Raises
    ------
    TypeError
        ``fn`` is not callable, or ``parts`` is not a ``Partitions``.
    ResidentLoopAborted
        A member died or stopped answering, or the partitions' workers are not known, or there
        is no distributed Client (the caller goes on with its driver loop).

    Examples
    --------
    Three rounds of a running sum of every partition's total, on every member:

    >>> import numpy as np, dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from skdml.parallel import persist_partitions, run_resident
    >>> def rounds(blocks, comm, n_rounds):  # module level in real code
    ...     local = sum(float(X.sum()) for (X,) in blocks)
    ...     return [float(comm.allreduce(np.array([local]), np.add)[0]) * (r + 1)
    ...             for r in range(n_rounds)]
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster, \\
    ...         Client(cluster):
    ...     parts = persist_partitions(da.ones((8, 2), chunks=(2, 2)))
    ...     run_resident(parts, rounds, 3)  # doctest: +SKIP
    [[16.0, 32.0, 48.0], [16.0, 32.0, 48.0]]
    """
    if not callable(fn):
        raise TypeError(f"run_resident needs a function to run on each member; got {fn!r}.")
    if not (hasattr(parts, "groups") and hasattr(parts, "blocks")):
        raise TypeError(
            "run_resident needs the Partitions that persist_partitions returns (it must know "
            f"which worker holds each partition); got {type(parts).__name__}.")
    ex = get_executor(client)
    if not ex.distributed:
        raise ResidentLoopAborted("resident loops need a distributed Client")
    members = _members(parts)
    if not members or any(w is None for w, _ in members):
        raise ResidentLoopAborted("the workers holding the partitions are not known")
    _ensure_plugin(ex.client)
    loop = uuid.uuid4().hex
    addresses = [w for w, _ in members]
    timeout = float(_config.get("resident_timeout"))
    prefix = new_name(name)
    # every member in one submission: members submitted one by one reached the scheduler in
    # separate batches of the client's stream (10 ms apart at most), and the first member
    # then waited for the last at the first allreduce (2-5 ms measured)
    tasks = []
    for rank, (worker, idx) in enumerate(members):
        blocks = [parts.blocks[i] for i in idx]
        with dask.annotate(workers=[worker], allow_other_workers=False, retries=0):
            tasks.append(dask.delayed(_member_task, pure=False)(
                fn, blocks, loop, rank, addresses, timeout, args, kwargs, idx,
                dask_key_name=f"{prefix}-{rank}"))
    futures = ex.client.compute(tasks, optimize_graph=False)
    try:
        try:
            return _collect(ex, futures, addresses)
        except CLUSTER_ERRORS as exc:  # the client lost the scheduler or a member's result
            raise ResidentLoopAborted(f"the cluster failed: {exc!r}") from exc
    except BaseException as exc:
        _call_off_members(ex, loop, addresses, repr(exc))
        if isinstance(exc, ResidentLoopAborted):
            logger.warning("skdml: resident loop %s ended early (%s); going on round by round",
                           prefix, exc)
        raise
    finally:
        ex.cancel(futures)


def _raise_member_error(futures, timeout=5.0):
    """Raise the error of the member that failed (it raises right after calling the loop off;
    give it ``timeout`` seconds to do so)."""
    from distributed import wait
    from distributed.utils import TimeoutError as DaskTimeoutError

    try:
        wait(futures, timeout=timeout, return_when="ALL_COMPLETED")
    except (DaskTimeoutError, TimeoutError):
        pass
    for f in futures:
        if f.status == "error" and not isinstance(f.exception(), CLUSTER_ERRORS):
            f.result()


def _call_off_members(ex, loop, addresses, reason):
    """Tell the members still running (if any) to stop waiting for the others."""
    try:
        alive = set(ex.client.scheduler_info(n_workers=-1)["workers"])
        targets = [a for a in dict.fromkeys(addresses) if a in alive]
        if targets:
            ex.client.run(_call_off, loop, reason, workers=targets, wait=False)
    except Exception:  # noqa: BLE001 - best effort: members also stop on their own
        logger.debug("skdml: could not call off resident loop %s", loop, exc_info=True)


def _collect(ex, futures, addresses):
    """The members' results, or ResidentLoopAborted as soon as one gives up or fails, or
    when a member's worker leaves the cluster (its task could then never run).

    The members end together (a member that stops calls the others off), so the results are
    read in one gather once all are done: one round trip, not one per member."""
    from distributed import wait
    from distributed.utils import TimeoutError as DaskTimeoutError

    while True:
        try:
            wait(futures, timeout=PING_INTERVAL * 4, return_when="ALL_COMPLETED")
        except (DaskTimeoutError, TimeoutError):
            pass
        done = [f for f in futures if f.done()]
        for f in done:
            if f.status == "error":
                exc = f.exception()
                if isinstance(exc, CLUSTER_ERRORS):
                    raise ResidentLoopAborted(f"a member failed: {exc!r}")
                f.result()  # the member's own error (e.g. in the loop's function)
            elif f.status != "finished":
                raise ResidentLoopAborted(f"a member's task was {f.status}")
        results = ex.client.gather(done) if done else []
        for out in results:
            if isinstance(out, _Aborted):
                if _FAILED in out.reason:  # the failing member's own error is the one to raise
                    _raise_member_error(futures)
                raise ResidentLoopAborted(out.reason)
        if len(done) == len(futures):
            return results
        alive = set(ex.client.scheduler_info(n_workers=-1)["workers"])
        if any(a not in alive for a in addresses):
            raise ResidentLoopAborted("a member's worker left the cluster")
