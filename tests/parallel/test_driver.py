"""run_step: a driver iteration redone after a cluster failure, kernel errors raised at once."""
import types

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
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
