"""KMeans survives a worker killed mid-fit (3 Nanny workers, SIGKILL) with the same result.

The kill is triggered by a scheduler plugin the moment the first task of a given stage is
assigned to a worker, so it always lands inside that stage, however loaded the machine is.
"""
import os
import signal

import numpy as np
import pytest
from dask.utils import key_split
from distributed.diagnostics.plugin import SchedulerPlugin
from numpy.testing import assert_allclose

from skdml.cluster import KMeans
from skdml.datasets import make_blobs

pytestmark = pytest.mark.slow


class KillOnStage(SchedulerPlugin):
    """SIGKILL the process ``pid`` when a task named ``stage`` is first sent to a worker."""

    name = "skdml-test-kill-on-stage"

    def __init__(self, stage, pid):
        self.stage = stage
        self.pid = pid
        self.fired = False

    def transition(self, key, start, finish, *args, **kwargs):
        if not self.fired and finish == "processing" and key_split(key) == self.stage:
            self.fired = True
            os.kill(self.pid, signal.SIGKILL)


def _fit(client):
    # Generated lazily chunk by chunk, so partitions lost with a worker are recomputed from
    # their lineage; overlapping blobs, so that Lloyd needs several iterations.
    X, _ = make_blobs(n_samples=240_000, n_features=8, centers=12, cluster_std=4.0,
                      chunks=30_000, random_state=0)
    with client.as_current():
        return KMeans(12, random_state=0).fit(X)


@pytest.fixture(scope="module")
def expected(nanny_client):
    """The undisturbed fit, from the same seed."""
    km = _fit(nanny_client)
    assert km.n_iter_ >= 3
    return km


@pytest.mark.parametrize("stage", ["skdml-kmeans-init-update", "skdml-kmeans-lloyd"])
def test_worker_killed_mid_fit(nannies, expected, stage):
    client = nannies
    pids = client.run(os.getpid)
    plugin = KillOnStage(stage, pids[sorted(pids)[0]])
    client.register_plugin(plugin)
    try:
        km = _fit(client)
        fired = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.plugins[KillOnStage.name].fired)
    finally:
        client.unregister_scheduler_plugin(KillOnStage.name)
    assert fired, f"no {stage} task ran"
    assert km.n_iter_ == expected.n_iter_
    assert_allclose(km.cluster_centers_, expected.cluster_centers_, rtol=1e-9, atol=1e-9)
    assert km.inertia_ == pytest.approx(expected.inertia_, rel=1e-9)
    assert_allclose(np.bincount(km.labels_.compute(scheduler="sync"), minlength=12),
                    np.bincount(expected.labels_.compute(scheduler="sync"), minlength=12))
