"""Shared helpers for skdml's asv benchmarks.

One file per skdml subpackage, one class per estimator (or generator). A class that needs a
cluster subclasses :class:`ClusterBenchmark`; a GPU variant overrides only ``setup`` and calls
:func:`requires_cupy` first. Benchmarks are ``time_*``, ``peakmem_*`` and ``track_*``.
"""
from __future__ import annotations

import importlib
import sys

import cloudpickle

# asv imports this package from asv_bench/, which is not on the workers' path: send functions
# defined in benchmark files to the workers by value, not as an import they could not resolve.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

__all__ = ["ClusterBenchmark", "make_blobs", "parameterized", "requires_cupy"]


def parameterized(names, params):
    """Give a benchmark method (or class) asv parameters.

    Parameters
    ----------
    names : list of str
        The parameters' names, as asv shows them.
    params : list of list
        One list of values per name; asv runs the Cartesian product.

    Examples
    --------
    >>> @parameterized(["n_chunks"], [[4, 16]])
    ... def time_fit(self, n_chunks):
    ...     pass
    >>> time_fit.param_names, time_fit.params
    (['n_chunks'], [[4, 16]])
    """
    def decorator(func):
        func.param_names = list(names)
        func.params = [list(p) for p in params]
        return func

    return decorator


def make_blobs(n, p, chunks, seed=0, **kwargs):
    """A lazy ``n x p`` Dask array of blobs from :func:`skdml.datasets.make_blobs`.

    ``chunks`` is the number of rows per chunk; the features are one chunk. Extra keywords
    (``centers``, ``dtype``, ...) are passed to the generator. skdml.datasets is imported
    here, not at module level, so this package imports even where it is missing.
    """
    from skdml.datasets import make_blobs as _make_blobs

    X, _ = _make_blobs(n_samples=n, n_features=p, chunks=chunks, random_state=seed, **kwargs)
    return X


def requires_cupy():
    """Skip the calling benchmark (asv treats ``NotImplementedError`` in setup as a skip)
    unless CuPy imports and sees a CUDA device. Returns the ``cupy`` module."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        raise NotImplementedError(f"CuPy is not usable here: {exc}") from None
    try:
        ok = bool(cupy.is_available())
    except Exception:
        ok = False
    if not ok:
        raise NotImplementedError("CuPy sees no CUDA device.")
    return cupy


class ClusterBenchmark:
    """Base class: a fresh 2-worker, 1-thread-each process ``LocalCluster`` for each benchmark.

    ``setup`` starts the cluster and a default ``Client`` (``self.cluster``, ``self.client``);
    ``teardown`` closes both. Subclasses that need data build it in their own ``setup`` after
    calling ``super().setup(*params)``.
    """

    n_workers = 2
    threads_per_worker = 1
    # Starting a process cluster costs about 1 s, so every sample is one call of the benchmark
    # and there are few of them; a warm-up run would only regenerate the same data.
    number = 1
    repeat = (1, 3, 30.0)
    warmup_time = 0.0
    timeout = 300.0

    def setup(self, *params):
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
            processes=True,
            dashboard_address=":0",
        )
        self.client = Client(self.cluster, set_as_default=True)
        # Import skdml on the workers now, so that no benchmark times a cold worker's imports.
        self.client.run(importlib.import_module, "skdml.datasets")

    def teardown(self, *params):
        client = getattr(self, "client", None)
        cluster = getattr(self, "cluster", None)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
