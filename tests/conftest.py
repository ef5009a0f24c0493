"""Shared fixtures: one in-process cluster for the session (cheap), process clusters where
processes matter (fault tests), as measured in shared/FACTS.md."""
import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

# distributed.utils_test's fixtures (client, loop, cleanup, ...) for tests that need a fresh
# subprocess cluster; use them sparingly, each costs seconds.
from distributed.utils_test import cleanup, client, cluster_fixture, loop, loop_in_thread  # noqa: F401


@pytest.fixture(scope="session")
def session_cluster():
    """Two single-threaded in-process workers, shared by the whole session."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0", memory_limit="2GiB") as cluster:
        yield cluster


@pytest.fixture
def c(session_cluster):
    """A Client on the session cluster, set as default for the test and closed after it."""
    with Client(session_cluster, set_as_default=True) as client:
        yield client


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def nanny_client():
    """Three single-threaded worker processes, each behind a Nanny, so a test can SIGKILL one
    (the Nanny restarts it); the scheduler runs in this process. One per test module: starting
    it costs about a second."""
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                      dashboard_address=":0", memory_limit="2GiB") as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture
def nannies(nanny_client):
    """``nanny_client`` with its three workers present: a worker killed by an earlier test is
    back (its Nanny restarts it), or replaced when its Nanny did not bring it back.

    The replacement is for loaded machines: once in about 30 runs of the fault tests with a
    CPU hog beside them, a killed worker never re-registered, and every later test of the
    module failed waiting for it. The Nannies of unregistered workers are closed and dropped
    from the cluster's spec, and ``scale`` starts new ones.
    """
    try:
        nanny_client.wait_for_workers(3, timeout=30)
    except TimeoutError:
        cluster = nanny_client.cluster
        live = {w["name"] for w in nanny_client.scheduler_info(n_workers=-1)["workers"].values()}
        for name in [n for n in cluster.worker_spec if n not in live]:
            del cluster.worker_spec[name]
            if name in cluster.workers:
                cluster.sync(cluster.workers.pop(name).close)
        cluster.scale(3)
        nanny_client.wait_for_workers(3, timeout=60)
    return nanny_client


class CountingScheduler:
    """A Dask scheduler that counts how often it is asked to compute, then runs synchronously."""

    def __init__(self):
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


@pytest.fixture
def counting_scheduler():
    """A fresh :class:`CountingScheduler` (use with ``dask.config.set(scheduler=...)``)."""
    return CountingScheduler()
