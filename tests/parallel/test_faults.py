"""Fault tolerance of the engine on real clusters: killed workers, stragglers, retries, a cluster
with no workers, a command-line deployment, task names and where allreduce leaves its result.

Kernels are built inside functions (closures), so they are pickled by value and run on any
process, including a ``dask scheduler`` / ``dask worker`` started from the command line, which
cannot import this test module.
"""
import operator
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from distributed import Client, LocalCluster, get_worker, wait
from numpy.testing import assert_allclose

import skdml
from skdml.parallel import (
    NoWorkersError,
    Parts,
    aggregate,
    allreduce,
    broadcast,
    map_partitions,
    persist_partitions,
    tree_reduce,
)

add = operator.add


# -- kernels (closures: pickled by value) ------------------------------------------------------
def _sleepy_colsum(per_partition=0.3):
    def kernel(block):
        time.sleep(per_partition)
        return block.sum(axis=0)

    return kernel


def _slow_add(delay):
    def op(a, b):
        time.sleep(delay)
        return a + b

    return op


def _straggler_kernel(slow_partition, slow_name, base=0.2, extra=4.0):
    def kernel(block, partition):
        time.sleep(base)
        if partition == slow_partition and get_worker().name == slow_name:
            time.sleep(extra)
        return block.sum(axis=0)

    return kernel


def _flaky_kernel(attempts_dir, fail_times, fail_partition=0):
    def kernel(block, partition):
        if partition == fail_partition:
            path = Path(attempts_dir) / f"attempts-{partition}"
            with open(path, "a") as fh:  # O_APPEND: safe across worker processes
                fh.write(f"{os.getpid()}\n")
            if len(path.read_text().splitlines()) <= fail_times:
                raise ValueError("boom")
        return block.sum(axis=0)

    return kernel


def _colsum_kernel():
    def colsum(block):
        return block.sum(axis=0)

    return colsum


# module-level functions are pickled by reference, which a `dask scheduler` process started
# from the command line cannot import: every kernel here is a closure, pickled by value
_colsum = _colsum_kernel()


def _kill_worker(client, address):
    """SIGKILL the worker process behind ``address`` (its Nanny starts a new one)."""
    pid = client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return pid


def _wait_gone(client, address, timeout=20):
    deadline = time.monotonic() + timeout
    while address in client.nthreads():
        assert time.monotonic() < deadline, f"{address} still registered after SIGKILL"
        time.sleep(0.05)


# -- clusters ----------------------------------------------------------------------------------
@pytest.fixture
def pc(nannies):
    """The process cluster with all three workers present (a killed one is restarted)."""
    # distributed.wait in these tests needs a current client (the engine does not).
    with nannies.as_current():
        yield nannies


@pytest.fixture(scope="module")
def thread_cluster():
    """Four single-threaded in-process workers (stragglers, task names)."""
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=False,
                      dashboard_address=":0", memory_limit="2GiB") as cluster:
        yield cluster


@pytest.fixture
def tc(thread_cluster):
    with Client(thread_cluster, set_as_default=False) as client:
        client.wait_for_workers(4, timeout=10)
        with client.as_current():  # see pc
            yield client


def _data(n_rows=3000, chunk=250, n_features=5, seed=0):
    # RandomState(seed) fixes every chunk's seed in the graph: recomputation gives the same
    # values. Each test uses its own seed, so no test finds another's keys still in memory.
    return da.random.RandomState(seed).random_sample((n_rows, n_features),
                                                    chunks=(chunk, n_features))


# -- 1. a worker SIGKILLed mid-stage -----------------------------------------------------------
def test_worker_killed_during_map_partitions(pc):
    X = _data(seed=1)
    expected = X.compute().sum(axis=0)
    parts = persist_partitions(X, client=pc)
    assert len(set(parts.workers)) == 3
    victim = sorted(set(parts.workers))[0]
    start = time.monotonic()
    sums = map_partitions(_sleepy_colsum(0.3), parts, name="faults-map", combine=add,
                          speculative=False, client=pc)
    time.sleep(0.2)  # map_partitions returned at once; every task is mid-flight (>= 0.3 s)
    assert not any(f.done() for f in sums)
    _kill_worker(pc, victim)
    total = aggregate(sums, add, client=pc)
    elapsed = time.monotonic() - start
    assert_allclose(total, expected, rtol=1e-12)
    _wait_gone(pc, victim)
    assert victim not in pc.nthreads()
    assert elapsed < 30


def test_balanced_copies_survive_their_worker(pc):
    """Partitions that persist_partitions moved keep their lineage: killing the worker that
    received them loses nothing."""
    X = _data(seed=7)
    expected = X.compute().sum(axis=0)
    first = sorted(pc.nthreads())[0]
    Xp = pc.persist(X, workers=[first])
    wait(Xp)
    parts = persist_partitions(Xp, client=pc)
    counts = sorted(parts.workers.count(w) for w in set(parts.workers))
    assert counts == [4, 4, 4]  # 12 partitions over 3 workers
    receiver = next(w for w in parts.workers if w != first)
    _kill_worker(pc, receiver)
    _wait_gone(pc, receiver)
    sums = map_partitions(_colsum, parts, name="faults-balanced", combine=add,
                          speculative=False, client=pc)
    assert_allclose(aggregate(sums, add, client=pc), expected, rtol=1e-12)


@pytest.mark.parametrize("path", ["shard", "fold", "tree"])
def test_worker_killed_during_allreduce(pc, path, monkeypatch):
    import skdml.parallel._reduce as R

    if path == "tree":  # more workers than FOLD_MAX_WORKERS: a tree, then a broadcast
        monkeypatch.setattr(R, "FOLD_MAX_WORKERS", 1)
    shard = path == "shard"
    X = _data(seed=2 + ["shard", "fold", "tree"].index(path))
    nbytes = X.shape[1] * X.dtype.itemsize  # small: the fold path on 3 workers
    expected = X.compute().sum(axis=0)
    parts = persist_partitions(X, client=pc)
    assert len(set(parts.workers)) == 3
    sums = map_partitions(_sleepy_colsum(0.1), parts, name="faults-map", group_by="partition",
                          speculative=False, client=pc)
    # a slow combine keeps the allreduce's own tasks running long enough to be hit
    reduced = allreduce(sums, op=_slow_add(0.15), name="faults-ar", shard=shard,
                        nbytes=nbytes, client=pc)
    assert len(reduced) == 3
    stage = {"shard": "gather", "fold": "fold", "tree": "bcast"}[path]
    assert all(key_split(f.key) == f"skdml-faults-ar-{stage}" for f in reduced.values())
    wait(list(sums), timeout=30)  # the map stage is done: the reduction is what runs now
    assert not all(f.done() for f in reduced.values())
    victim = sorted(reduced)[0]
    _kill_worker(pc, victim)
    values = {w: f.result(timeout=60) for w, f in reduced.items()}
    assert set(values) == set(reduced)  # the dead worker's copy was recomputed elsewhere
    for w, v in values.items():
        assert_allclose(v, expected, rtol=1e-12, err_msg=w)
    _wait_gone(pc, victim)


def _sleepy_use(delay):
    def kernel(block, total):
        time.sleep(delay)
        return total

    return kernel


def test_worker_killed_while_consumers_fold_an_allreduce(pc):
    # the fold path leaves the fold to the next stage's tasks: kill a worker while they run
    X = _data(seed=9)
    expected = X.compute().sum(axis=0)
    parts = persist_partitions(X, client=pc)
    sums = map_partitions(_sleepy_colsum(0.05), parts, name="faults-map", combine=add,
                          speculative=False, client=pc)
    reduced = allreduce(sums, op="sum", name="faults-lazy", nbytes=8 * X.shape[1], client=pc)
    used = map_partitions(_sleepy_use(0.3), parts, reduced, name="faults-use",
                          group_by="partition", speculative=False, client=pc)
    deadline = time.monotonic() + 30
    while not any("faults-use" in str(k) for ks in pc.processing().values() for k in ks):
        assert time.monotonic() < deadline, "the consumer stage never ran"
        time.sleep(0.01)
    victim = sorted(pc.nthreads())[0]
    _kill_worker(pc, victim)
    values = pc.gather(list(used))
    assert len(values) == parts.n_partitions
    for v in values:
        assert_allclose(v, expected, rtol=1e-12)
    assert not pc.run_on_scheduler(  # the consumers folded: no fold task was made
        lambda dask_scheduler: [k for k in dask_scheduler.tasks if "faults-lazy" in str(k)])
    _wait_gone(pc, victim)


# -- 3. retries --------------------------------------------------------------------------------
def test_task_failing_twice_succeeds_with_two_retries(pc, tmp_path):
    X = _data(600, 100, seed=4)
    expected = X.compute().sum(axis=0)
    parts = persist_partitions(X, client=pc)
    sums = map_partitions(_flaky_kernel(tmp_path, fail_times=2), parts, name="faults-flaky",
                          group_by="partition", with_index=True, retries=2,
                          speculative=False, client=pc)
    assert_allclose(aggregate(sums, add, client=pc), expected, rtol=1e-12)
    assert len((tmp_path / "attempts-0").read_text().splitlines()) == 3


@pytest.mark.parametrize("speculative", [False, True])
def test_task_failing_without_retries_raises_its_exception(pc, tmp_path, speculative):
    parts = persist_partitions(_data(600, 100, seed=5 + speculative), client=pc)
    start = time.monotonic()
    with pytest.raises(ValueError, match="boom"):
        sums = map_partitions(_flaky_kernel(tmp_path, fail_times=2), parts,
                              name="faults-flaky", group_by="partition", with_index=True,
                              retries=0, speculative=speculative, client=pc)
        aggregate(sums, add, client=pc)
    assert time.monotonic() - start < 15
    assert len((tmp_path / "attempts-0").read_text().splitlines()) == 1


# -- 7. allreduce stays on the workers ---------------------------------------------------------
def _partial_8mb(i):
    return np.arange(1_000_000, dtype=np.float64) * (i + 1)  # 8 MB


def _transfer_counts(dask_worker):
    return len(dask_worker.transfer_incoming_log), len(dask_worker.transfer_outgoing_log)


def _transfers_since(n_in, n_out, dask_worker=None):
    incoming = list(dask_worker.transfer_incoming_log)[n_in:]
    outgoing = list(dask_worker.transfer_outgoing_log)[n_out:]
    return ([(e["who"], e["total"]) for e in incoming],
            [(e["who"], e["total"]) for e in outgoing])


@pytest.mark.parametrize("path", ["shard", "fold", "tree"])
def test_allreduce_stays_on_workers_and_moves_little(pc, path, monkeypatch):
    import skdml.parallel._reduce as R

    if path == "tree":
        monkeypatch.setattr(R, "FOLD_MAX_WORKERS", 1)
    if path == "fold":  # 8 MB: over FOLD_MAX_BYTES, where the tree is the default
        monkeypatch.setattr(R, "FOLD_MAX_BYTES", float("inf"))
    shard = path == "shard"
    workers = sorted(pc.nthreads())
    W = len(workers)
    futures = [pc.submit(_partial_8mb, i, workers=[w], pure=False,
                         key=f"faults-partial-{shard}-{i}")
               for i, w in enumerate(workers)]
    wait(futures, timeout=30)
    nbytes = 8_000_000
    expected = np.arange(1_000_000, dtype=np.float64) * sum(range(1, W + 1))
    before = pc.run(_transfer_counts)

    gathers = []  # every Future.result() / Client.gather goes through Client._gather
    real_gather = pc._gather

    def spy(*args, **kwargs):
        gathers.append(args)
        return real_gather(*args, **kwargs)

    monkeypatch.setattr(pc, "_gather", spy)
    reduced = allreduce(Parts(futures, workers=workers), op="sum", name="faults-ar8",
                        shard=shard, nbytes=nbytes, client=pc)
    wait(list(reduced.values()), timeout=60)
    assert gathers == []
    assert sorted(reduced) == workers
    who_has = pc.who_has(list(reduced.values()))  # the scheduler's view
    for w, f in reduced.items():
        assert f.status == "finished"
        assert tuple(who_has[f.key]) == (w,), (f.key, who_has[f.key])

    moved = {w: pc.run(_transfers_since, *before[w], workers=[w])[w] for w in workers}
    # sharded: each worker sends and receives 2 (W-1)/W of the value; fold: each worker
    # receives the W-1 other partials and sends its own to the W-1 others; tree + broadcast:
    # the root's worker receives W-1 partials and sends W-1 copies
    ideal = 2 * (W - 1) / W * nbytes if shard else (W - 1) * nbytes
    bound = ideal * 1.01 + 64_000
    report = {}
    for w, (incoming, outgoing) in moved.items():
        # only worker <-> worker transfers: nothing went to the scheduler or the client
        assert all(who in workers for who, _ in incoming), incoming
        assert all(who in workers for who, _ in outgoing), outgoing
        n_in = sum(b for _, b in incoming)
        n_out = sum(b for _, b in outgoing)
        report[w] = (n_in, n_out)
        assert n_in <= bound, (w, n_in, n_out, bound)
    # What a worker sends depends on Dask as well: a value already copied to a second worker
    # may be fetched from that copy (seen under load: one worker sent its partial and a copy
    # of another's, 24 MB, and the other's owner 8 MB). So the receives are bounded per worker
    # and the sends in total.
    assert sum(n_out for _, n_out in report.values()) <= W * bound, (report, bound)
    print(f"\nallreduce 8 MB, W={W}, {path}: bytes (in, out) per worker "
          f"{sorted(report.values())}, bound {bound:.0f}")

    # the checks above can see a transfer to the client: fetching the values shows up in both
    for f in reduced.values():
        assert_allclose(f.result(), expected)
    assert gathers
    _, outgoing = pc.run(_transfers_since, *before[workers[0]], workers=[workers[0]])[workers[0]]
    assert any(who not in workers for who, _ in outgoing)


# -- 2. stragglers and speculation -------------------------------------------------------------
def _block(seed, i, rows=100, cols=4):
    return np.random.default_rng([seed, i]).random((rows, cols))


def _first_starter_straggles(marker, slow_name, base=0.2, extra=2.0):
    """The first task to start on worker ``slow_name`` sleeps ``extra`` s more."""

    def kernel(block, partition):
        time.sleep(base)
        if get_worker().name == slow_name:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                time.sleep(extra)
        return block.sum(axis=0)

    return kernel


def _executing(dask_worker):
    return len(dask_worker.state.executing)


def _timed_stages(client, data, kernels):
    """Run one ``group_by="partition"`` stage per ``(kernel, speculative)``; time each."""
    out = []
    with skdml.config.set(speculation_min_duration=0.05, speculation_interval=0.02):
        for kernel, speculative in kernels:
            start = time.monotonic()
            res = map_partitions(kernel, data, name="straggle", group_by="partition",
                                 with_index=True, speculative=speculative, client=client)
            values = np.stack(client.gather(list(res)))
            out.append((time.monotonic() - start, values, res))
    # a cancelled straggler keeps its thread until its sleep ends: let it finish
    deadline = time.monotonic() + 10
    while sum(client.run(_executing).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return out


def test_speculation_of_a_stage_that_does_not_block(tc):
    # map_partitions(block=False) returns at once; the straggler gets its backup copy while
    # the caller waits with Parts.settle (a driver that submits its next stage first)
    workers = sorted(tc.nthreads())
    names = {a: info["name"] for a, info in tc.scheduler_info()["workers"].items()}
    placement = [workers[0]] + [workers[1 + i % 3] for i in range(7)]
    blocks = [tc.submit(_block, 5, i, workers=[w], pure=False, key=f"faults-nb-block-{i}")
              for i, w in enumerate(placement)]
    wait(blocks, timeout=10)
    slow = _straggler_kernel(0, names[workers[0]], base=0.3, extra=4.0)
    with skdml.config.set(speculation_min_duration=0.05, speculation_interval=0.02):
        start = time.monotonic()
        res = map_partitions(slow, blocks, name="nb-straggle", group_by="partition",
                             with_index=True, block=False, client=tc)
        assert not any(f.done() for f in res)  # returned before any task could end
        winners = res.settle()
        settled = time.monotonic() - start
    assert winners is not res and winners.n_backups >= 1
    assert key_split(winners[0].key) == "skdml-nb-straggle-backup"
    assert winners.workers == res.workers and winners.partitions == res.partitions
    assert settled < 4.0  # the straggler alone takes 4.3 s
    assert_allclose(np.stack(tc.gather(list(winners))),
                    np.stack([_block(5, i).sum(axis=0) for i in range(8)]), rtol=1e-12)
    deadline = time.monotonic() + 10
    while sum(tc.run(_executing).values()) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_speculation_beats_a_straggler(tc):
    workers = sorted(tc.nthreads())
    names = {a: info["name"] for a, info in tc.scheduler_info()["workers"].items()}
    # 16 partitions: one on the slow worker, five on each other one. Only the straggler runs
    # there, so nothing queues behind it (the test after next covers that case).
    slow_worker, others = workers[0], workers[1:]
    placement = [slow_worker] + [others[i % 3] for i in range(15)]
    blocks = [tc.submit(_block, 7, i, workers=[w], pure=False, key=f"faults-block-{i}")
              for i, w in enumerate(placement)]
    wait(blocks, timeout=10)
    assert [next(iter(tc.who_has([b])[b.key])) for b in blocks] == placement
    expected = np.stack([_block(7, i).sum(axis=0) for i in range(16)])
    slow = _straggler_kernel(0, names[slow_worker], base=0.2, extra=4.0)
    (unslowed, v0, _), (plain, v1, r1), (spec, v2, res) = _timed_stages(
        tc, blocks, [(_straggler_kernel(None, None), True), (slow, False), (slow, True)])
    print(f"\nstage times: unslowed {unslowed:.2f} s, straggler without speculation "
          f"{plain:.2f} s, with speculation {spec:.2f} s ({res.n_backups} backups)")
    for values in (v0, v1, v2):
        assert_allclose(values, expected, rtol=1e-12)
    assert plain >= 4.0
    assert r1.n_backups == 0
    assert res.n_backups >= 1
    assert key_split(res[0].key) == "skdml-straggle-backup"  # the backup copy won
    # The stage ended while the straggler still slept (4.2 s). No tighter bound against
    # `unslowed`: measured alone 1.2x, but up to 2.1x on a loaded 2-core CI machine.
    assert spec < 3.0, (spec, unslowed)


@pytest.fixture(scope="module")
def nosteal_cluster():
    """Four single-threaded in-process workers with work stealing off, so a task queued on a
    worker stays there (deterministic queueing behind a straggler)."""
    with dask.config.set({"distributed.scheduler.work-stealing": False}), \
            LocalCluster(n_workers=4, threads_per_worker=1, processes=False,
                         dashboard_address=":0", memory_limit="2GiB") as cluster:
        yield cluster


def _queued_straggler_stages(cluster, tmp_path, counts, seed):
    """Place 16 partitions ``counts[k]`` on worker k (k=0 is slow), then time a stage without
    a straggler and one where the first task to start on worker 0 straggles, speculative."""
    with Client(cluster, set_as_default=False) as client, client.as_current():
        client.wait_for_workers(4, timeout=10)
        workers = sorted(client.nthreads())
        names = {a: info["name"] for a, info in client.scheduler_info()["workers"].items()}
        placement = [w for w, k in zip(workers, counts) for _ in range(k)]
        assert len(placement) == 16
        blocks = [client.submit(_block, seed, i, workers=[w], pure=False,
                                key=f"faults-block-{seed}-{i}")
                  for i, w in enumerate(placement)]
        wait(blocks, timeout=10)
        expected = np.stack([_block(seed, i).sum(axis=0) for i in range(16)])
        slow = _first_starter_straggles(str(tmp_path / "straggled"), names[workers[0]],
                                        extra=4.0)
        (unslowed, v0, _), (spec, v1, res) = _timed_stages(
            client, blocks, [(_straggler_kernel(None, None), True), (slow, True)])
        for values in (v0, v1):
            assert_allclose(values, expected, rtol=1e-12)
        return unslowed, spec, res


def _assert_rescued(res, spec, unslowed):
    # A backup copy won, and the stage ended while the straggler still slept (4.2 s; the
    # tasks queued behind it would end later still). A ratio to `unslowed` is no test here:
    # on a loaded 2-core CI machine it reached 2.1x (1.74 s against 0.83 s).
    assert any(key_split(f.key) == "skdml-straggle-backup" for f in res)
    assert spec < 3.0, (spec, unslowed)


def test_speculation_rescues_tasks_queued_behind_a_straggler(nosteal_cluster, tmp_path):
    # Four partitions per worker: the straggler holds three tasks back on its worker. They
    # have not started, yet they get backups too.
    unslowed, spec, res = _queued_straggler_stages(nosteal_cluster, tmp_path, (4, 4, 4, 4), 13)
    print(f"\nqueued behind a straggler (4/4/4/4): unslowed {unslowed:.2f} s, with "
          f"speculation {spec:.2f} s ({res.n_backups} backups)")
    assert res.n_backups >= 4
    _assert_rescued(res, spec, unslowed)


def test_speculation_arms_when_queued_tasks_hold_back_the_quantile(nosteal_cluster, tmp_path):
    # Five of sixteen partitions on the straggler's worker: eleven can finish, twelve are
    # needed to arm speculation (quantile 0.75), so the stage waits for the straggler.
    unslowed, spec, res = _queued_straggler_stages(nosteal_cluster, tmp_path, (5, 4, 4, 3), 14)
    print(f"\nqueued behind a straggler (5/4/4/3): unslowed {unslowed:.2f} s, with "
          f"speculation {spec:.2f} s ({res.n_backups} backups)")
    assert res.n_backups >= 1
    _assert_rescued(res, spec, unslowed)


# -- 4. no workers left ------------------------------------------------------------------------
def test_no_workers_left_raises_in_bounded_time():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client, client.as_current():
        client.wait_for_workers(1, timeout=10)
        parts = persist_partitions(_data(400, 100, seed=8), client=client)
        cluster.scale(0)
        deadline = time.monotonic() + 10
        while client.nthreads():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with skdml.config.set(no_worker_timeout=2):
            # a fresh computation (persisting a new array waits for workers)
            start = time.monotonic()
            with pytest.raises(NoWorkersError, match="no workers"):
                aggregate(map_partitions(_colsum, _data(400, 100, seed=9), combine=add,
                                         client=client), add, client=client)
            assert 1.5 < time.monotonic() - start < 15
            # partitions persisted before the workers left: the wait for the results gives up
            start = time.monotonic()
            with pytest.raises(NoWorkersError):
                aggregate(map_partitions(_colsum, parts, combine=add, speculative=False,
                                         client=client), add, client=client)
            assert time.monotonic() - start < 15


# -- 6. task names -----------------------------------------------------------------------------
def _record_keys(dask_scheduler):
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Recorder(SchedulerPlugin):
        name = "skdml-test-recorder"

        def __init__(self):
            self.keys = set()

        def transition(self, key, start, finish, *args, **kwargs):
            self.keys.add(key)

    dask_scheduler.add_plugin(Recorder(), name=Recorder.name)


def _recorded_keys(dask_scheduler):
    plugin = dask_scheduler.plugins.pop("skdml-test-recorder")
    return list(plugin.keys)


def test_task_names_are_readable(tc, monkeypatch):
    import skdml.parallel._reduce as R

    X = _data(800, 100, seed=10)
    parts = persist_partitions(X, client=tc)
    data_keys = {f.key for (f,) in parts.blocks}
    tc.run_on_scheduler(_record_keys)
    try:
        sums = map_partitions(_colsum, parts, name="names-map", combine=add,
                              speculative=False, client=tc)
        per_part = map_partitions(_colsum, parts, name="names-part", group_by="partition",
                                  speculative=True, client=tc)
        root = tree_reduce(per_part, add, split_every=2, name="names-tree", client=tc)
        agg = aggregate(per_part, add, split_every=2, name="names-agg", client=tc)
        ar_shard = allreduce(sums, name="names-ar", shard=True, client=tc)
        ar_fold = allreduce(sums, op="mean", name="names-ar", shard=False, nbytes=800,
                            client=tc)
        monkeypatch.setattr(R, "FOLD_MAX_WORKERS", 1)
        ar_tree = allreduce(sums, op="mean", name="names-ar", shard=False, client=tc)
        copies = broadcast(np.ones(3), parts, name="names-bcast", client=tc)
        wait([root, *ar_shard.values(), *ar_fold.values(), *ar_tree.values(),
              *copies.values()], timeout=30)
        assert_allclose(agg, root.result())
    finally:
        keys = tc.run_on_scheduler(_recorded_keys)
    ours = [k for k in keys if k not in data_keys]
    assert ours
    readable = re.compile(r"^skdml(-[a-z]+)+$")
    names = set()
    for k in ours:
        first = k[0] if isinstance(k, tuple) else k
        assert isinstance(first, str) and first.startswith("skdml-"), k
        name = key_split(k)
        assert readable.match(name), (k, name)
        assert not re.search(r"[0-9a-f]{8}", name), (k, name)
        names.add(name)
    expected = {
        "skdml-names-map", "skdml-names-part", "skdml-names-tree", "skdml-names-agg",
        "skdml-names-ar-shard", "skdml-names-ar-scatter", "skdml-names-ar-gather",
        "skdml-names-ar-fold", "skdml-names-ar-tree", "skdml-names-ar-bcast",
        "skdml-names-ar-mean",
        "skdml-names-bcast",
    }
    assert expected <= names, expected - names
    assert names <= expected | {"skdml-names-ar-local", "skdml-names-part-backup"}, names


# -- 5. a command-line deployment --------------------------------------------------------------
@pytest.mark.slow
def test_cli_scheduler_and_workers(tmp_path):
    dask_exe = str(Path(sys.executable).parent / "dask")
    sched_file = tmp_path / "s.json"
    procs = []
    logs = []

    def start(*args):
        log = open(tmp_path / f"proc-{len(procs)}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([dask_exe, *args], stdout=log, stderr=subprocess.STDOUT,
                                      cwd=tmp_path))

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
              str(sched_file), "--no-dashboard")
        deadline = time.monotonic() + 30
        while not sched_file.exists():
            assert procs[0].poll() is None, (tmp_path / "proc-0.log").read_text()
            assert time.monotonic() < deadline, "scheduler did not start"
            time.sleep(0.1)
        for _ in range(2):
            start("worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                  "--no-dashboard")
        with Client(scheduler_file=str(sched_file), set_as_default=False) as client, \
                client.as_current():
            client.wait_for_workers(2, timeout=30)
            X = _data(1200, 150, 4, seed=11)
            expected = X.compute().sum(axis=0)
            parts = persist_partitions(X, client=client)
            sums = map_partitions(_colsum, parts, name="cli-map", combine=add,
                                  speculative=False, client=client)
            for shard in (True, False):
                reduced = allreduce(sums, name="cli-ar", shard=shard, client=client)
                assert len(reduced) == len(set(parts.workers))
                for w, f in reduced.items():
                    assert_allclose(f.result(timeout=30), expected, rtol=1e-12, err_msg=w)
            per_part = map_partitions(_colsum, parts, name="cli-part", group_by="partition",
                                      client=client)
            root = tree_reduce(per_part, add, split_every=2, name="cli-tree", client=client)
            assert_allclose(root.result(timeout=30), expected, rtol=1e-12)
            assert_allclose(aggregate(per_part, add, split_every=2, client=client), expected,
                            rtol=1e-12)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for log in logs:
            log.close()


def test_engine_uses_the_client_it_is_given(thread_cluster):
    """No default or current client: every wait goes through the client passed in."""
    X = _data(400, 100, seed=11)
    with Client(thread_cluster, set_as_default=False) as client:
        parts = persist_partitions(X, client=client)
        sums = map_partitions(_colsum, parts, combine=add, client=client)
        assert_allclose(aggregate(sums, add, client=client), X.compute().sum(axis=0))
        rep = allreduce(sums, client=client)
        assert_allclose(client.gather(rep.any()), X.compute().sum(axis=0))
