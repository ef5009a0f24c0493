"""Which array library holds the data, where it lives, and the dtype policy.

Every kernel receives its namespace ``xp`` from here; nothing else in skdml decides it.
CuPy is imported lazily: its absence is never an error unless CuPy data is passed.
"""
from __future__ import annotations

import sys

import array_api_compat
import numpy as np

__all__ = [
    "backend_name",
    "get_namespace",
    "is_cupy_array",
    "is_dask_array",
    "meta_like",
    "result_float_dtype",
    "asarray_like",
    "to_host",
    "gpu_available",
]


def is_dask_array(x) -> bool:
    """Return True when ``x`` is a ``dask.array.Array`` (without importing Dask needlessly)."""
    mod = sys.modules.get("dask.array")
    return mod is not None and isinstance(x, mod.Array)


def is_cupy_array(x) -> bool:
    """Return True when ``x`` (or, for a Dask array, its chunks) is a CuPy array."""
    if is_dask_array(x):
        x = x._meta
    mod = sys.modules.get("cupy")
    return mod is not None and isinstance(x, mod.ndarray)


def _inner(x):
    """The array that tells the backend: the ``_meta`` of a Dask array, else ``x``."""
    if is_dask_array(x):
        return x._meta
    return x


def backend_name(x) -> str:
    """Name of the array library behind ``x``: ``"numpy"``, ``"cupy"``, ``"array_api_strict"``.

    Dask arrays report the library of their chunks; scipy.sparse matrices report ``"numpy"``.
    """
    inner = _inner(x)
    if is_cupy_array(inner):
        return "cupy"
    sparse = sys.modules.get("scipy.sparse")
    if isinstance(inner, np.ndarray) or np.isscalar(inner) or (
        sparse is not None and sparse.issparse(inner)
    ):
        return "numpy"
    mod = type(inner).__module__.split(".")[0]
    return mod


def get_namespace(*arrays):
    """Array-API namespace shared by ``arrays`` (NumPy, CuPy, array_api_strict or Dask of those).

    Dask arrays contribute the namespace of their chunks (read from ``_meta``), because kernels
    run on chunks. ``None`` entries are ignored. Arrays from different libraries raise
    ``TypeError`` with a message saying how to fix it.

    Returns
    -------
    xp : module
        ``array_api_compat``'s wrapper namespace (``array_api_compat.numpy`` for NumPy,
        ``array_api_compat.cupy`` for CuPy), or the strict namespace itself.
    """
    inner = [_inner(a) for a in arrays if a is not None]
    sparse = sys.modules.get("scipy.sparse")
    inner = [np.empty(0) if sparse is not None and sparse.issparse(a) else a for a in inner]
    names = {backend_name(a) for a in inner}
    if len(names) > 1:
        raise TypeError(
            f"Inputs live in different array libraries ({', '.join(sorted(names))}); "
            "pass every array (X, y, sample_weight) from the same library, e.g. move them all "
            "to CuPy with cupy.asarray or all to NumPy with .get()."
        )
    if not inner:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*inner)


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install
        return False
    try:
        return bool(cupy.is_available())
    except Exception:
        return False


def to_host(x):
    """Copy ``x`` to a NumPy array in host memory (no copy when it already is one).

    Accepts NumPy, CuPy and array_api_strict arrays, Python scalars, and dicts/tuples/lists
    of those (converted leaf by leaf).
    """
    if isinstance(x, dict):
        return {k: to_host(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_host(v) for v in x)
    if isinstance(x, np.ndarray) or np.isscalar(x) or x is None:
        return x
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def result_float_dtype(dtype):
    """The floating dtype skdml computes in for input of ``dtype``.

    float32 stays float32 (and float16 is promoted to float32); float64, integers and booleans
    give float64. Complex dtypes are refused by validation before this is reached.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32 or dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def meta_like(x, ndim=None, dtype=None):
    """A zero-size array of the same library as ``x`` (for ``map_blocks(meta=...)``)."""
    inner = _inner(x)
    ndim = getattr(inner, "ndim", 1) if ndim is None else ndim
    dtype = getattr(inner, "dtype", np.float64) if dtype is None else dtype
    if is_cupy_array(inner):
        import cupy

        return cupy.empty((0,) * ndim, dtype=dtype)
    return np.empty((0,) * ndim, dtype=dtype)


def asarray_like(value, like, dtype=None):
    """``value`` as an array of the same library and device as ``like``.

    Used to put small host-side state (initial centers, coefficients) next to the data.
    """
    inner = _inner(like)
    if is_cupy_array(inner):
        import cupy

        return cupy.asarray(value, dtype=dtype)
    xp = get_namespace(inner)
    if getattr(xp, "__name__", "").startswith("array_api_strict"):
        return xp.asarray(to_host(value), dtype=dtype)
    return np.asarray(to_host(value), dtype=dtype)
