"""run_step: a driver iteration redone after a cluster failure, kernel errors raised at once."""
import time
import types

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster, wait
from distributed.scheduler import KilledWorker
from numpy.testing import assert_allclose

from skdml.parallel import aggregate, map_partitions, persist_partitions, run_step


def add(a, b):
    return a + b


def test_run_step_redoes_an_iteration_that_lost_its_results():
    X = da.random.RandomState(0).random_sample((400, 3), chunks=(100, 3))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        parts = persist_partitions(X)
        calls = []

        def step(scale):
            sums = map_partitions(lambda b: b.sum(0) * scale, parts, combine=add,
                                  speculative=False, name="test-step")
            calls.append(1)
            if len(calls) == 1:
                # the cluster loses this iteration's results before they are read
                client.cancel(list(sums))
            return aggregate(sums, add)

        out = run_step(step, 2.0, retries=2)
        assert len(calls) == 2
        assert_allclose(out, 2.0 * X.compute().sum(0))


def test_run_step_drops_a_failed_attempt_at_once(c):
    """The futures a failed attempt held are released when the step is redone, without waiting
    for a garbage collection (distributed raises cluster errors from inside a reference
    cycle, which held the attempt's frames)."""
    import gc

    held = []

    def step():
        if held:
            return "done"
        keep = c.submit(add, 1, 2, key="skdml-test-held-by-failed-attempt")
        held.append(keep.key)
        lost = c.submit(time.sleep, 0.2, key="skdml-test-lost")
        c.cancel([lost])
        c.gather(lost)  # raises FutureCancelledError, from inside distributed's sync

    gc.collect()
    gc.disable()
    try:
        assert run_step(step, retries=1) == "done"
        assert c.refcount.get(held[0], 0) == 0
    finally:
        gc.enable()


def test_run_step_gives_up_after_its_retries():
    calls = []

    def step():
        calls.append(1)
        raise KilledWorker("task", types.SimpleNamespace(address="tcp://dead:1"),
                           allowed_failures=3)

    with pytest.raises(KilledWorker):
        run_step(step, retries=1)
    assert len(calls) == 2


def test_run_step_raises_kernel_errors_at_once():
    calls = []

    def step():
        calls.append(1)
        raise ValueError("Input X contains NaN")

    with pytest.raises(ValueError, match="NaN"):
        run_step(step, retries=3)
    assert calls == [1]


# -- the messages of a driver loop -------------------------------------------------------------
def _add_recorder(dask_scheduler=None):
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Recorder(SchedulerPlugin):
        name = "skdml-test-messages"

        def __init__(self):
            self.events = []

        def update_graph(self, scheduler, *, keys, **kwargs):
            self.events.append(("submit", {str(k) for k in keys}))

        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "forgotten":
                self.events.append(("forget", str(key)))

    dask_scheduler.add_plugin(Recorder(), name=Recorder.name)


def _events(dask_scheduler=None):
    return list(dask_scheduler.plugins["skdml-test-messages"].events)


def _remove_recorder(dask_scheduler=None):
    dask_scheduler.plugins.pop("skdml-test-messages", None)


@pytest.fixture
def recorded(c):
    c.run_on_scheduler(_add_recorder)
    yield lambda: c.run_on_scheduler(_events)
    c.run_on_scheduler(_remove_recorder)


def _colsum(block):
    return block.sum(0)


def _wait_forgotten(events, keys, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        forgotten = {k for kind, k in events() if kind == "forget"}
        if keys <= forgotten:
            return
        time.sleep(0.02)
    raise AssertionError(f"not released after {timeout} s: {sorted(keys - forgotten)}")


def test_a_stage_reaches_the_scheduler_in_one_message(c, recorded):
    parts = persist_partitions(da.ones((800, 3), chunks=(100, 3)))
    stage = map_partitions(_colsum, parts, group_by="partition", speculative=False)
    assert len(stage) == 8
    wait(list(stage))
    submits = [keys for kind, keys in recorded() if kind == "submit"]
    assert {str(f.key) for f in stage} in submits  # all eight tasks in one update-graph


def test_a_finished_stage_is_released_after_the_next_submit(c, recorded):
    parts = persist_partitions(da.ones((400, 3), chunks=(100, 3)))
    first = map_partitions(_colsum, parts, combine=add, speculative=False)
    first_keys = {str(f.key) for f in first}
    assert_allclose(aggregate(first, add), [400.0] * 3)
    del first  # the driver is done with the stage
    second = map_partitions(_colsum, parts, combine=add, speculative=False)
    second_keys = {str(f.key) for f in second}
    _wait_forgotten(recorded, first_keys)
    events = recorded()
    submitted = next(i for i, (kind, k) in enumerate(events)
                     if kind == "submit" and second_keys <= k)
    released = min(i for i, (kind, k) in enumerate(events)
                   if kind == "forget" and k in first_keys)
    assert submitted < released


def test_a_finished_stage_is_released_without_a_next_submit(c, recorded, monkeypatch):
    import skdml.parallel._executor as E

    monkeypatch.setattr(E, "RELEASE_DELAY", 0.2)
    parts = persist_partitions(da.ones((400, 3), chunks=(100, 3)))
    stage = map_partitions(_colsum, parts, combine=add, speculative=False)
    keys = {str(f.key) for f in stage}
    aggregate(stage, add)
    del stage
    _wait_forgotten(recorded, keys)


def test_the_release_timer_keeps_a_stage_read_since(c, recorded, monkeypatch):
    # Stage 1 is read at T1 (its timer fires at T1 + 2), stage 2 at T2 >= T1 + 1.2 (its submit
    # releases stage 1; its timer fires at T2 + 2). Stage 1's timer, at or before T2 + 0.8,
    # must leave stage 2 alone: checked at T2 + 1.4 (0.6 s of margin each way).
    import skdml.parallel._executor as E

    monkeypatch.setattr(E, "RELEASE_DELAY", 2.0)
    parts = persist_partitions(da.ones((400, 3), chunks=(100, 3)))
    keys = []
    for pause in (1.2, 0):
        stage = map_partitions(_colsum, parts, combine=add, speculative=False)
        keys.append({str(f.key) for f in stage})
        aggregate(stage, add)
        read = time.monotonic()
        del stage
        time.sleep(pause)
    _wait_forgotten(recorded, keys[0])
    time.sleep(max(0.0, read + 1.4 - time.monotonic()))  # stage 1's timer has fired
    forgotten = {k for kind, k in recorded() if kind == "forget"}
    assert not keys[1] & forgotten
    _wait_forgotten(recorded, keys[1])


@pytest.mark.parametrize("distributed", [False, True])
def test_submit_many_needs_one_key_per_task(distributed, request):
    from skdml.parallel import Executor

    ex = Executor(request.getfixturevalue("c") if distributed else None)
    with pytest.raises(ValueError, match="one key per task: got 1 keys for 2"):
        ex.submit_many(add, [(1, 2), (3, 4)], keys=["skdml-test-few-keys"])
    handles = ex.submit_many(add, [(1, 2), (3, 4)], keys=["skdml-test-k0", "skdml-test-k1"])
    assert ex.gather(handles) == [3, 7]
