"""
Quickstart: a local Dask cluster, a lazy dataset and the skdml engine
=====================================================================

Starts a local cluster (a GPU cluster when a GPU and dask-cuda are present), prints the
dashboard link, generates a dataset chunk by chunk on the workers, and computes the per-class
feature means with the engine every estimator uses: one task per worker thread maps a pure
kernel over the persisted partitions, and a tree reduction combines the partial sums. Then it
fits :class:`skdml.cluster.KMeans`, built on the same engine, on the same data.
"""
import time

import numpy as np

import skdml
from skdml.cluster import KMeans
from skdml.datasets import make_blobs
from skdml.parallel import aggregate, map_partitions, persist_partitions


def class_sums(X, y, n_classes):
    """Per-class feature sums and counts of one partition (a pure kernel: no Dask inside)."""
    onehot = (y[:, None] == np.arange(n_classes)[None, :]).astype(X.dtype)
    return {"sums": onehot.T @ X, "counts": onehot.sum(axis=0)}


def add(a, b):
    return {k: a[k] + b[k] for k in a}


def main():
    with skdml.local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as client:
        print(f"Dask dashboard: {client.dashboard_link}")
        X, y = make_blobs(n_samples=400_000, n_features=16, centers=5, chunks=50_000,
                          random_state=0)
        print(f"X: {X.shape} {X.dtype} in {X.npartitions} partitions (lazy; nothing computed)")
        t = time.perf_counter()
        parts = persist_partitions(X, y)
        stats = aggregate(map_partitions(class_sums, parts, 5, combine=add,
                                         name="quickstart-class-sums"), add)
        means = stats["sums"] / stats["counts"][:, None]
        print(f"class counts: {stats['counts'].astype(int).tolist()}")
        print(f"class means (first 3 features):\n{np.round(means[:, :3], 3)}")
        print(f"generated, persisted and reduced in {time.perf_counter() - t:.2f} s")

        t = time.perf_counter()
        km = KMeans(n_clusters=5, random_state=0).fit(X)
        print(f"KMeans: inertia {km.inertia_:.6g} after {km.n_iter_} Lloyd iterations, "
              f"fitted in {time.perf_counter() - t:.2f} s")
        print(f"KMeans cluster sizes: {np.bincount(km.labels_.compute()).tolist()}")


if __name__ == "__main__":
    main()
