"""skdml: distributed machine learning with the scikit-learn API, on Dask.

Estimators take NumPy, pandas, xarray or Dask input (NumPy or CuPy chunks) and run on the active
``distributed.Client`` when there is one, else on Dask's local threaded scheduler.
"""
from . import config
from ._runtime import get_client, local_cluster, show_versions
from ._version import __version__

__all__ = ["__version__", "config", "get_client", "local_cluster", "show_versions"]
