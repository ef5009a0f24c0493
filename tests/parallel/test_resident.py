"""Worker-resident loops: members combine values among themselves, agree to the bit, and never
wait forever for a member that failed, left or does not start."""
import time

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import skdml
from skdml.parallel import ResidentLoopAborted, persist_partitions, run_resident


def _rounds(blocks, comm, *, n_rounds):
    """Each round, every member adds its partitions' row sums to the running total."""
    local = sum(float(np.asarray(X).sum()) for (X,) in blocks)
    seen = []
    for r in range(n_rounds):
        seen.append(comm.allreduce(np.array([local * (r + 1)]), np.add))
    return comm.rank, comm.size, [float(v[0]) for v in seen]


def _fails_on_rank_1(blocks, comm):
    if comm.rank == 1:
        raise ZeroDivisionError("the loop's own error")
    comm.allreduce(np.zeros(1), np.add)
    return "unreachable"


def test_members_combine_their_values_and_agree(c):
    X = da.arange(40.0, chunks=5).reshape(40, 1).rechunk((5, 1))
    parts = persist_partitions(X)
    assert len(set(parts.workers)) == 2
    out = run_resident(parts, _rounds, n_rounds=3, name="test-rounds")
    total = float(np.arange(40.0).sum())
    assert [o[0] for o in out] == list(range(len(out)))
    assert {o[1] for o in out} == {len(out)} and len(out) == 2  # one member per thread
    for _, _, seen in out:
        assert seen == [total, 2 * total, 3 * total]


def _where(blocks, comm):
    from distributed import get_worker

    comm.allreduce(np.zeros(1), np.add)
    return get_worker().address, list(comm.partitions)


def test_each_member_runs_where_its_partitions_are(c):
    # the members are submitted together, each pinned to the worker holding its partitions
    X = da.arange(40.0, chunks=5).reshape(40, 1).rechunk((5, 1))
    parts = persist_partitions(X)
    for _ in range(3):
        out = run_resident(parts, _where, name="test-where")
        assert len(out) == 2 and len({w for w, _ in out}) == 2
        for worker, partitions in out:
            assert partitions and all(parts.workers[i] == worker for i in partitions)


def test_several_members_on_one_worker():
    # two threads on one worker: two members, whose values pass through the mailbox directly
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        parts = persist_partitions(da.ones((8, 2), chunks=(2, 2)), client=client)
        out = run_resident(parts, _rounds, n_rounds=2, client=client)
    assert len(out) == 2
    assert all(seen == [16.0, 32.0] for _, _, seen in out)


def test_a_member_error_is_raised_and_calls_the_others_off(c):
    parts = persist_partitions(da.ones((8, 2), chunks=(2, 2)))
    start = time.monotonic()
    with skdml.config.set(resident_timeout=60):
        with pytest.raises(ZeroDivisionError, match="the loop's own error"):
            run_resident(parts, _fails_on_rank_1)
    assert time.monotonic() - start < 10
    # the other member stopped waiting: the workers take new work at once
    assert c.submit(sum, [1, 2], pure=False).result(timeout=10) == 3


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def test_a_member_that_cannot_start_ends_the_loop_after_the_timeout(c):
    parts = persist_partitions(da.ones((8, 2), chunks=(2, 2)))
    workers = sorted(set(parts.workers))
    busy = c.submit(_sleep, 4, workers=[workers[1]], pure=False)  # its only thread is taken
    start = time.monotonic()
    with skdml.config.set(resident_timeout=1.0):
        with pytest.raises(ResidentLoopAborted, match="sent nothing"):
            run_resident(parts, _rounds, n_rounds=2)
    assert time.monotonic() - start < 4
    assert busy.result() == 4


def test_needs_a_distributed_client():
    assert skdml.get_client() is None
    parts = persist_partitions(da.ones((4, 2), chunks=(2, 2)))
    with pytest.raises(ResidentLoopAborted, match="distributed Client"):
        run_resident(parts, _rounds, n_rounds=1)


def test_bad_arguments_are_refused_with_a_clear_error(c):
    parts = persist_partitions(da.ones((4, 2), chunks=(2, 2)))
    with pytest.raises(TypeError, match="needs a function"):
        run_resident(parts, "not a function")
    with pytest.raises(TypeError, match="Partitions that persist_partitions returns"):
        run_resident([da.ones(3)], _rounds, n_rounds=1)
