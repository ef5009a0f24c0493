"""Starting a cluster and finding the one in use."""
from __future__ import annotations

import importlib
import platform

from ._backend import gpu_available

__all__ = ["local_cluster", "get_client", "show_versions"]


def get_client():
    """The active ``distributed.Client``, or ``None`` when Dask's local scheduler is in use.

    Estimators call this: with a Client they run on its cluster (with retries, speculation and
    worker-aware aggregation); without one they run the same graphs on Dask's threaded
    scheduler, so ``fit`` works with no cluster at all.
    """
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    if client.status in ("closed", "closing"):
        return None
    return client


def local_cluster(n_workers=None, threads_per_worker=None, gpu="auto", **kwargs):
    """Start a Dask cluster on this machine and return a ``distributed.Client`` connected to it.

    Parameters
    ----------
    n_workers : int, default=None
        Number of worker processes. ``None`` lets Dask choose (one per GPU with dask-cuda).
    threads_per_worker : int, default=None
        Threads per worker. ``None`` lets Dask choose.
    gpu : {"auto", True, False}, default="auto"
        ``"auto"`` starts a ``dask_cuda.LocalCUDACluster`` (one worker per GPU) when a GPU and
        dask-cuda are present, else a CPU ``LocalCluster``. ``True`` demands the GPU cluster and
        raises ``RuntimeError`` if it is not available. ``False`` always starts a CPU cluster.
    **kwargs
        Passed to the cluster class (e.g. ``processes=False``, ``memory_limit="4GiB"``,
        ``dashboard_address=":0"``).

    Returns
    -------
    distributed.Client
        Closing it (``client.close()``, or leaving a ``with`` block) also closes the cluster.

    Examples
    --------
    >>> import skdml
    >>> with skdml.local_cluster(n_workers=1, processes=False, gpu=False,
    ...                          dashboard_address=":0") as client:
    ...     len(client.scheduler_info()["workers"])
    1
    """
    from distributed import Client

    if gpu not in ("auto", True, False):
        raise ValueError(f"gpu must be 'auto', True or False; got {gpu!r}.")
    use_gpu = False
    if gpu is True or gpu == "auto":
        has_dask_cuda = importlib.util.find_spec("dask_cuda") is not None
        ok = has_dask_cuda and gpu_available()
        if gpu is True and not ok:
            why = "dask-cuda is not installed" if not has_dask_cuda else "no CUDA GPU is visible"
            raise RuntimeError(
                f"local_cluster(gpu=True) needs a CUDA GPU and dask-cuda, but {why}. "
                "Install the GPU extra (pip install 'skdml[gpu]') on a machine with a GPU, "
                "or pass gpu=False for a CPU cluster."
            )
        use_gpu = ok
    if use_gpu:
        from dask_cuda import LocalCUDACluster

        if threads_per_worker is not None:
            kwargs["threads_per_worker"] = threads_per_worker
        if n_workers is not None:
            kwargs["n_workers"] = n_workers
        return _ClusterClient(LocalCUDACluster(**kwargs))
    # A Client given cluster keywords starts its own LocalCluster and closes it on close().
    return Client(n_workers=n_workers, threads_per_worker=threads_per_worker,
                  set_as_default=True, **kwargs)


def _cluster_client_class():
    from distributed import Client

    class ClusterClient(Client):
        """A Client that closes the cluster it was given when it is closed."""

        def close(self, *args, **kwargs):
            out = super().close(*args, **kwargs)
            self.cluster.close()
            return out

    return ClusterClient


def _ClusterClient(cluster):
    return _cluster_client_class()(cluster, set_as_default=True)


def _version(name):
    try:
        mod = importlib.import_module(name)
    except Exception:
        return None
    return getattr(mod, "__version__", "unknown")


def show_versions():
    """Print the versions of skdml and its main dependencies, and whether a GPU is visible.

    Examples
    --------
    >>> import skdml
    >>> skdml.show_versions()  # doctest: +ELLIPSIS
    skdml...
    """
    from ._version import __version__

    rows = [("skdml", __version__), ("python", platform.python_version()),
            ("platform", platform.platform())]
    for name in ["dask", "distributed", "numpy", "scipy", "sklearn", "xarray", "pandas",
                 "array_api_compat", "cupy", "dask_cuda"]:
        rows.append((name, _version(name) or "not installed"))
    rows.append(("gpu visible", str(gpu_available())))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}} : {value}")
