"""A worker killed mid-fit does not fail SGDClassifier.fit, and the model is bit for bit the one
an undisturbed fit gives: the tasks are deterministic, so recomputed or redone work is identical,
and the partitions' models are summed in a way that does not depend on where they run.

Three single-threaded worker processes behind Nannies (so that one can be SIGKILLed and comes
back); the data are generated on the workers by skdml.datasets, so lost partitions are
recomputed from their lineage.
"""
import logging
import os
import signal
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import skdml
from skdml.datasets import make_classification
from skdml.linear_model import SGDClassifier

pytestmark = pytest.mark.slow

PARAMS = dict(loss="log_loss", max_iter=15, tol=None, random_state=0, average=True)


@pytest.fixture(scope="module", autouse=True)
def array_api_kernels():
    """The array-API kernels: the compiled one runs a round of these small partitions in about
    a millisecond, too short for the kill to land reliably while a round is running."""
    with skdml.config.set(jit=False):
        yield


@pytest.fixture
def pc(nannies):
    return nannies


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=60_000, n_features=20, n_informative=8,
                               chunks=10_000, random_state=0)


@pytest.fixture(scope="module")
def reference(nanny_client, data):
    X, y = data
    with nanny_client.as_current():
        return SGDClassifier(**PARAMS).fit(X, y)


def _busy_worker(client, timeout=20.0):
    """A worker that is running an SGD round right now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any("skdml-sgd-local" in str(k) for k in keys):
                return worker
        time.sleep(0.01)
    raise AssertionError("no SGD round seen running")


def _fit_killing_a_worker(client, data, delay):
    X, y = data
    result = {}

    def fit():
        with client.as_current():
            try:
                result["model"] = SGDClassifier(**PARAMS).fit(X, y)
            except BaseException as exc:  # reported in the main thread
                result["error"] = exc

    thread = threading.Thread(target=fit)
    thread.start()
    time.sleep(delay)
    victim = _busy_worker(client)
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "fit did not finish"
    if "error" in result:
        raise result["error"]
    return result["model"]


@pytest.mark.parametrize("resident", [True, False])
def test_worker_killed_mid_fit(pc, data, reference, resident):
    """Dask recomputes the lost partitions and models from lineage; the fit goes on (a
    resident loop that loses a member ends, and the fit goes on round by round)."""
    with skdml.config.set(resident=resident):
        model = _fit_killing_a_worker(pc, data, delay=0.3)
    assert model.n_iter_ == PARAMS["max_iter"]
    assert_array_equal(model.coef_, reference.coef_)
    X, y = data
    assert model.score(X[:5000].compute(), y[:5000].compute()) > 0.8


def test_killed_worker_error_redoes_the_epoch(pc, data, reference, caplog):
    """With allowed-failures=0 the kill surfaces as KilledWorker; the round-by-round driver
    redoes the epoch from the model it holds (run_step) instead of failing the fit."""
    def set_allowed(dask_scheduler, n):
        old = dask_scheduler.allowed_failures
        dask_scheduler.allowed_failures = n
        return old

    old = pc.run_on_scheduler(set_allowed, n=0)
    try:
        with caplog.at_level(logging.WARNING, logger="skdml"), \
                skdml.config.set(resident=False):
            model = _fit_killing_a_worker(pc, data, delay=0.3)
    finally:
        pc.run_on_scheduler(set_allowed, n=old)
    assert any("redoing it from the last completed state" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert model.n_iter_ == PARAMS["max_iter"]
    assert_array_equal(model.coef_, reference.coef_)
    assert np.all(np.isfinite(model.intercept_))
