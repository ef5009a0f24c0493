"""skdml.cluster.KMeans on a 2-worker process cluster: whole fit and seconds per Lloyd iteration.

The data are the issue's: 2,000,000 x 32 blobs, 16 centers, 8 partitions, generated and
persisted on the workers in ``setup``. The side-by-side comparison with scikit-learn, dask-ml and
the hardware floor lives in ``benchmarks/kmeans.py``; these classes track skdml's own figures
over time.
"""
from __future__ import annotations

import time

import numpy as np

from . import ClusterBenchmark, make_blobs, requires_cupy

N, D, K = 2_000_000, 32, 16
N_ITER = 20


class KMeans(ClusterBenchmark):
    """``KMeans(16).fit`` (k-means|| included) and forced Lloyd iterations, float64 / float32."""

    params = [["float64", "float32"]]
    param_names = ["dtype"]
    timeout = 600.0

    def setup(self, dtype):
        super().setup(dtype)
        self.make_data(dtype)

    def make_data(self, dtype, **kwargs):
        from distributed import wait

        X = make_blobs(N, D, N // 8, seed=0, centers=K, dtype=np.dtype(dtype), **kwargs)
        self.X = X.persist()
        wait(self.X)

    def fit(self):
        from skdml.cluster import KMeans as SKDMLKMeans

        return SKDMLKMeans(K, random_state=0).fit(self.X)

    def time_fit(self, dtype):
        self.fit()

    def peakmem_fit(self, dtype):
        self.fit()

    def track_inertia(self, dtype):
        return float(self.fit().inertia_)

    def track_s_per_lloyd_iteration(self, dtype):
        # The fit's own driver, with the convergence test switched off (benchmark-only hook).
        from skdml.cluster._kmeans import _kernel_layout, _Driver
        from skdml.parallel import persist_partitions

        X = self.X
        parts = persist_partitions(X.map_blocks(_kernel_layout, dtype=X.dtype, meta=X._meta),
                                   None)
        try:
            driver = _Driver(parts, n_clusters=K, dtype=X.dtype, entropy=0, verbose=0)
            centers = driver.init_kmeanspp(1)
            driver.lloyd(centers, max_iter=2, tol=0, force_iter=True)
            start = time.perf_counter()
            driver.lloyd(centers, max_iter=N_ITER, tol=0, force_iter=True)
            return (time.perf_counter() - start) / N_ITER
        finally:
            parts.release()

    track_s_per_lloyd_iteration.unit = "s"


class KMeansGPU(KMeans):
    """The same on a ``LocalCUDACluster`` with CuPy chunks (skipped without a GPU)."""

    def setup(self, dtype):
        requires_cupy()
        from dask_cuda import LocalCUDACluster
        from distributed import Client

        self.cluster = LocalCUDACluster(dashboard_address=":0")
        self.client = Client(self.cluster, set_as_default=True)
        self.make_data(dtype, array_type="cupy")
