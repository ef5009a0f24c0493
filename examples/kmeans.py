"""
K-means on a Dask cluster, compared with scikit-learn
=====================================================

Fits :class:`skdml.cluster.KMeans` (k-means|| initialisation, then Lloyd iterations) on a lazy
data set generated chunk by chunk on the workers of a local cluster, and compares the inertia,
the number of iterations and the time with :class:`sklearn.cluster.KMeans` on the same data
in memory. Then it shows what stays lazy: ``labels_`` and ``predict`` on Dask input are Dask
arrays, computed only when asked.
"""
import time

import numpy as np
from sklearn.cluster import KMeans as SKLearnKMeans

import skdml
from skdml.cluster import KMeans
from skdml.datasets import make_blobs


def main():
    with skdml.local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                             gpu=False) as client:
        print(f"Dask dashboard: {client.dashboard_link}")
        X, y = make_blobs(n_samples=400_000, n_features=16, centers=10, cluster_std=2.0,
                          chunks=50_000, random_state=0)
        X = X.persist()  # generate once on the workers, so both timings below exclude it
        print(f"X: {X.shape} {X.dtype} in {X.npartitions} partitions")

        t = time.perf_counter()
        km = KMeans(n_clusters=10, random_state=0).fit(X)
        t_skdml = time.perf_counter() - t
        print(f"skdml   KMeans: inertia {km.inertia_:.6g} after {km.n_iter_} iterations "
              f"in {t_skdml:.2f} s")

        X_np = X.compute()
        t = time.perf_counter()
        sk = SKLearnKMeans(n_clusters=10, random_state=0).fit(X_np)
        t_sk = time.perf_counter() - t
        print(f"sklearn KMeans: inertia {sk.inertia_:.6g} after {sk.n_iter_} iterations "
              f"in {t_sk:.2f} s")
        print(f"inertia ratio skdml / sklearn: {km.inertia_ / sk.inertia_:.6f}")

        # Same initial centers: the same Lloyd iterations as scikit-learn, to rounding.
        init = X_np[:10]
        a = KMeans(n_clusters=10, init=init, n_init=1).fit(X)
        b = SKLearnKMeans(n_clusters=10, init=init, n_init=1, algorithm="lloyd").fit(X_np)
        print(f"from the same initial centers: {a.n_iter_} vs {b.n_iter_} iterations, largest "
              f"center difference {np.abs(a.cluster_centers_ - b.cluster_centers_).max():.1e}")

        # Per-sample outputs stay lazy for Dask input.
        print(f"labels_: {km.labels_!r}")
        sizes = np.bincount(km.labels_.compute(), minlength=10)
        print(f"cluster sizes: {sizes.tolist()}")
        # Cluster ids are arbitrary: compare the partitions, not the ids.
        ours = km.predict(X[:1000]).compute()
        theirs = sk.predict(X_np[:1000])
        same = len(set(zip(ours.tolist(), theirs.tolist()))) == len(set(theirs.tolist()))
        print(f"same clusters as scikit-learn on the first 1000 points: {same}")

if __name__ == "__main__":
    main()
