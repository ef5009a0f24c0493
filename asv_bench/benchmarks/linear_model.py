"""skdml.linear_model.SGDClassifier on a 2-worker process cluster: 5 epochs of log_loss.

The data are the issue's: make_classification 1,000,000 x 100 (20 informative), binary and 10
classes, plus 200,000 test rows, in 4 training partitions placed 2 per worker; generated and
persisted on the workers in ``setup``. ``benchmarks/sgd.py`` holds the side-by-side comparison
with scikit-learn and dask-ml and the accuracy-against-time table; these classes track skdml's
own figures over time, and the ratio to scikit-learn measured in the same process.
"""
from __future__ import annotations

import time

from . import ClusterBenchmark, parameterized

N_TRAIN, N_TEST, D = 1_000_000, 200_000, 100
EPOCHS = 5


class SGDClassifier(ClusterBenchmark):
    """``SGDClassifier(loss="log_loss", max_iter=5, tol=None)``: binary and 10 classes."""

    params = [[2, 10]]
    param_names = ["n_classes"]
    timeout = 900.0

    def setup(self, n_classes):
        super().setup(n_classes)
        import dask.array as da
        from distributed import wait

        from skdml.datasets import make_classification

        X, y = make_classification(n_samples=N_TRAIN + N_TEST, n_features=D, n_informative=20,
                                   n_classes=n_classes, chunks=N_TRAIN // 4, random_state=0)
        workers = sorted(self.client.nthreads())
        xs, ys = [], []
        for i in range(X.numblocks[0]):  # pin the partitions round robin: even work
            xb, yb = self.client.persist([X.blocks[i], y.blocks[i]],
                                         workers=[workers[i % len(workers)]])
            xs.append(xb)
            ys.append(yb)
        X, y = da.concatenate(xs), da.concatenate(ys)
        wait([X, y])
        self.X_train, self.y_train = X[:N_TRAIN], y[:N_TRAIN]
        self.X_test, self.y_test = X[N_TRAIN:], y[N_TRAIN:]
        self.fit(1)  # warm the workers (imports, first allocations)

    def fit(self, epochs=EPOCHS, **kwargs):
        from skdml.linear_model import SGDClassifier as Estimator

        return Estimator(loss="log_loss", max_iter=epochs, tol=None, random_state=0,
                         **kwargs).fit(self.X_train, self.y_train)

    def time_fit(self, n_classes):
        self.fit()

    def peakmem_fit(self, n_classes):
        self.fit()

    def track_accuracy(self, n_classes):
        return float(self.fit().score(self.X_test, self.y_test))

    track_accuracy.unit = "accuracy"

    def track_accuracy_averaged(self, n_classes):
        return float(self.fit(average=True).score(self.X_test, self.y_test))

    track_accuracy_averaged.unit = "accuracy"

    def _s_per_epoch(self, **kwargs):
        """(5-epoch fit - 1-epoch fit) / 4, each fit timed as the fastest of three: one fit
        after a pause can pay for page faults that later ones do not (freed memory goes back
        to the host on the development VM), and single samples of the 5-epoch fit varied 3x
        between asv runs (0.08 to 0.26 s per epoch) on the shared 2-core machine."""
        def timed(epochs):
            start = time.perf_counter()
            self.fit(epochs, **kwargs)
            return time.perf_counter() - start

        one = min(timed(1) for _ in range(3))
        return (min(timed(EPOCHS) for _ in range(3)) - one) / (EPOCHS - 1)

    def track_s_per_epoch(self, n_classes):
        return self._s_per_epoch()

    track_s_per_epoch.unit = "s"

    def track_s_per_epoch_shuffle_rows(self, n_classes):
        """``shuffle=True``: every row in a fresh random order (the default is "batches")."""
        return self._s_per_epoch(shuffle=True)

    track_s_per_epoch_shuffle_rows.unit = "s"

    @parameterized(["n_classes"], [[2]])
    def track_speedup_vs_sklearn(self, n_classes):
        """scikit-learn's 5-epoch fit time over skdml's, on the same data in this process."""
        from sklearn.linear_model import SGDClassifier as Reference

        X, y = self.X_train.compute(), self.y_train.compute()
        start = time.perf_counter()
        Reference(loss="log_loss", max_iter=EPOCHS, tol=None, random_state=0).fit(X, y)
        reference = time.perf_counter() - start
        start = time.perf_counter()
        self.fit()
        return reference / (time.perf_counter() - start)

    track_speedup_vs_sklearn.unit = "x"
