"""A fit releases everything it put on the cluster as soon as the caller drops the estimator.

The garbage collector is off while these run: Dask futures held by a reference cycle are
released only when a collection happens to run, so the check must not depend on one.
"""
import gc
import time

import dask.array as da
import numpy as np
import pytest

from skdml.cluster import KMeans
from skdml.linear_model import SGDClassifier, SGDRegressor


def _held(client, word):
    return client.run_on_scheduler(
        lambda dask_scheduler, word=word: [
            k for k, ts in dask_scheduler.tasks.items()
            if ts.state == "memory" and word in str(k)])


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("make, word", [
    (lambda: KMeans(4, random_state=0), "kmeans"),
    (lambda: SGDClassifier(max_iter=3, tol=None, random_state=0), "sgd"),
    (lambda: SGDRegressor(max_iter=3, tol=None, random_state=0), "sgd"),
], ids=["KMeans", "SGDClassifier", "SGDRegressor"])
def test_fit_releases_its_data_without_garbage_collection(c, no_gc, make, word):
    rng = np.random.default_rng(0)
    X = da.from_array(rng.normal(size=(400, 4)), chunks=100)
    y = da.from_array(rng.integers(0, 2, size=400).astype(float), chunks=100)
    make().fit(X, y)
    # Finished stages are released after the next submit or after a short timer
    # (skdml.parallel._executor.RELEASE_DELAY); allow for that, and no more than a few seconds.
    deadline = time.time() + 5
    while (held := _held(c, word)) and time.time() < deadline:
        time.sleep(0.05)
    assert not held
