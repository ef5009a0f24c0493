"""Input adapters, data checks and parameter constraints shared by every skdml estimator.

Every estimator turns its input into one shape before doing anything else: :func:`adapt_X`
returns an :class:`Adapted` holding a Dask array partitioned by rows (all features in one
chunk, no empty partition, known chunk sizes, a floating dtype) and a :meth:`Adapted.wrap`
method that turns per-sample outputs back into the caller's type. :func:`adapt_y` and
:func:`adapt_sample_weight` align targets and weights with those partitions.

Checks on metadata (type, dimensions, dtype, shape, backend) run on the client before anything
is submitted. Checks on values (NaN, infinity, negative weights) run eagerly for in-memory input,
where they are cheap, and lazily for Dask input: :func:`check_finite` adds them to the first pass
over the data, so they never cost an extra ``compute()``.

The second half of the module checks estimator parameters against a
``_parameter_constraints`` dictionary with scikit-learn's shape and wording
(:class:`Interval`, :class:`StrOptions`, :class:`Options`, :func:`validate_params`).
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from dask.array.core import normalize_chunks
from dask.base import tokenize
from dask.utils import parse_bytes
from sklearn.utils import check_array

from ._backend import get_namespace, is_cupy_array, is_dask_array, result_float_dtype

__all__ = [
    "Adapted",
    "adapt_X",
    "adapt_y",
    "adapt_sample_weight",
    "check_n_features",
    "check_finite",
    "InvalidParameterError",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "Options",
    "validate_params",
]

#: Row chunks are split further than the size limit demands only when they hold at least
#: this many bytes each, so tiny inputs stay in one partition.
_MIN_SPLIT_BYTES = 4 * 2**20


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def _issparse(x) -> bool:
    """True when ``x`` is a scipy.sparse matrix or array (scipy is imported only if loaded)."""
    mod = sys.modules.get("scipy.sparse")
    return mod is not None and mod.issparse(x)


def _module_class(x, module, name):
    """True when ``x`` is an instance of ``module.name``, importing nothing new."""
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls is not None and isinstance(x, cls)


def _is_xarray(x) -> bool:
    return _module_class(x, "xarray", "DataArray")


def _is_pandas_frame(x) -> bool:
    return _module_class(x, "pandas", "DataFrame")


def _is_pandas_series(x) -> bool:
    return _module_class(x, "pandas", "Series")


def _is_dask_frame(x) -> bool:
    return _module_class(x, "dask.dataframe", "DataFrame")


def _is_dask_series(x) -> bool:
    return _module_class(x, "dask.dataframe", "Series")


def _ndim_message(ndim, shape, name="X"):
    """The message for input that is not 2-D (sklearn's "Reshape your data" included)."""
    shape = shape if isinstance(shape, str) else tuple(shape)
    if ndim == 0:
        return (
            f"Expected a 2-D array, got a 0-D array (a scalar) instead for {name}. "
            f"Reshape your data: pass {name} as an array of shape (n_samples, n_features)."
        )
    if ndim == 1:
        return (
            f"Expected a 2-D array, got a 1-D array of shape {shape} instead for {name}. "
            f"Reshape your data with {name}.reshape(-1, 1) if it has one feature or "
            f"{name}.reshape(1, -1) if it is one sample."
        )
    return (
        f"Expected a 2-D array, got a {ndim}-D array of shape {shape} instead for {name}. "
        f"Reshape your data to (n_samples, n_features), e.g. with "
        f"{name}.reshape(len({name}), -1)."
    )


def _empty_message(shape, estimator_name):
    """sklearn's message for an input with no rows or no columns."""
    if shape[0] == 0:
        return (
            f"Found array with 0 sample(s) (shape={tuple(shape)}) while a minimum of 1 is "
            f"required by {estimator_name}; pass at least one row."
        )
    return (
        f"Found array with 0 feature(s) (shape={tuple(shape)}) while a minimum of 1 is "
        f"required by {estimator_name}; pass at least one column."
    )


def _check_dtype_kind(dtype, name="X"):
    """Refuse complex and non-numeric dtypes (metadata only)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {dtype}. Pass real numbers, e.g. "
            f"{name}.real or abs({name})."
        )
    if dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {dtype}, but skdml needs numeric data (bool, int or float). "
            f"Convert it with {name}.astype(float), and encode text or categories first, "
            "e.g. with sklearn.preprocessing.OrdinalEncoder."
        )


def _target_dtype(orig, dtype):
    """The dtype an input of dtype ``orig`` is converted to under the ``dtype`` policy.

    ``"float"``: float32 stays float32, everything else numeric becomes float64
    (:func:`skdml._backend.result_float_dtype`); ``None``: keep the numeric dtype;
    otherwise ``np.dtype(dtype)``.
    """
    if dtype is None:
        return np.dtype(orig)
    if isinstance(dtype, str) and dtype == "float":
        return result_float_dtype(orig)
    return np.dtype(dtype)


def _unknown_chunks_message(name="X"):
    return (
        f"{name} is a Dask array with unknown chunk sizes (NaN in .chunks), so its number of "
        f"rows is unknown. Call {name}.compute_chunk_sizes() first, or create it from a Dask "
        "DataFrame with .to_dask_array(lengths=True)."
    )


def _parallelism():
    """Threads available to run partitions: the cluster's when a Client is active."""
    from ._runtime import get_client

    client = get_client()
    if client is not None:
        try:
            return max(1, int(client.scheduler_info().get("total_threads") or 1))
        except Exception:  # a client that cannot answer: fall back to this machine
            pass
    return os.cpu_count() or 1


def _default_row_chunk(n_rows, row_nbytes):
    """Rows per chunk for in-memory input.

    Chunks hold at most Dask's ``array.chunk-size`` (128 MiB by default). Inputs large enough
    to gain from parallelism are split into at least one chunk per thread of the cluster, but
    never into chunks smaller than a few MiB, so small inputs stay in one partition.
    """
    row_nbytes = max(int(row_nbytes), 1)
    nbytes = n_rows * row_nbytes
    limit = parse_bytes(dask.config.get("array.chunk-size", "128MiB"))
    n_chunks = max(1, math.ceil(nbytes / limit))
    if nbytes >= 2 * _MIN_SPLIT_BYTES:
        n_chunks = max(n_chunks, min(_parallelism(), nbytes // _MIN_SPLIT_BYTES))
    n_chunks = min(n_chunks, n_rows)
    return max(1, math.ceil(n_rows / n_chunks))


def _drop_empty_row_chunks(X):
    """``X`` without its zero-row chunks (no data are copied; other chunks keep their keys)."""
    if all(c > 0 for c in X.chunks[0]):
        return X
    keep = [i for i, c in enumerate(X.chunks[0]) if c > 0]
    if not keep:  # pragma: no cover - callers refuse 0-row input before this
        return X
    return da.concatenate([X.blocks[i] for i in keep], axis=0)


def _str_feature_names(names, where):
    """Feature names as sklearn stores them: an object array when all are str, else None.

    Mixed str / non-str names raise ``TypeError`` (like sklearn).
    """
    names = list(names)
    if not names:
        return None
    is_str = [isinstance(n, str) for n in names]
    if all(is_str):
        return np.asarray(names, dtype=object)
    if any(is_str):
        types = sorted({type(n).__name__ for n in names})
        raise TypeError(
            f"Feature names are only supported if all input features have string names, but "
            f"the {where} of your input have types {types}. Convert them all to str, e.g. "
            "X.columns = X.columns.astype(str), or make none of them strings."
        )
    return None


# --------------------------------------------------------------------------------------
# Value checks that run per block
# --------------------------------------------------------------------------------------
def _values_of(block):
    """The stored values of a block: ``.data`` of a sparse block, else the block."""
    return block.data if _issparse(block) else block


def _first_row(block, mask):
    """Index (in ``block``) of the first row where ``mask`` (over the stored values) is True."""
    if _issparse(block):
        coo = block.tocoo()
        rows = np.asarray(coo.row)[np.asarray(mask)]
        return int(rows.min())
    xp = get_namespace(mask)
    if mask.ndim > 1:
        mask = xp.any(mask, axis=tuple(range(1, mask.ndim)))
    return int(xp.nonzero(mask)[0][0])


def _location(row, block_info):
    """``"row 12"`` or ``"row 123, which is row 23 of partition 4"`` for error messages."""
    if not block_info or 0 not in block_info:
        return f"row {row}"
    info = block_info[0]
    start = info["array-location"][0][0]
    part = info["chunk-location"][0]
    return f"row {start + row}, which is row {row} of partition {part}"


def _dtype_repr(dtype):
    """``dtype('float64')`` as sklearn prints it, for NumPy dtypes and others alike."""
    return repr(dtype) if isinstance(dtype, np.dtype) else repr(str(dtype))


def _check_block_finite(block, *, input_name="X", allow_nan=False, block_info=None):
    """Raise ``ValueError`` if ``block`` holds NaN (unless ``allow_nan``) or infinity.

    Returns ``block`` itself (no copy), so the check can ride inside a data pass.

    Parameters
    ----------
    block : array
        A NumPy, CuPy or array-API block, or a scipy.sparse block (its stored values are
        checked).
    input_name : str, default="X"
        Name of the input in the message.
    allow_nan : bool, default=False
        Accept NaN (infinity is still refused).
    block_info : dict, default=None
        Filled in by ``dask.array.map_blocks``; gives the row and partition in the message.

    Returns
    -------
    block : array
        The input block, unchanged.
    """
    values = _values_of(block)
    xp = get_namespace(values)
    if math.prod(values.shape) == 0 or not xp.isdtype(values.dtype, "real floating"):
        return block
    # One cheap pass without a temporary: a finite sum means every value is finite.
    with np.errstate(over="ignore", invalid="ignore"):
        total = xp.sum(values)
    if bool(xp.isfinite(total)):
        return block
    bad_inf = xp.isinf(values)
    if bool(xp.any(bad_inf)):
        row = _first_row(block, bad_inf)
        raise ValueError(
            f"Input {input_name} contains infinity or a value too large for "
            f"{_dtype_repr(values.dtype)} "
            f"(first in {_location(row, block_info)}); replace or remove the infinite values "
            "first, e.g. with numpy.clip or by dropping those rows."
        )
    if not allow_nan:
        bad_nan = xp.isnan(values)
        if bool(xp.any(bad_nan)):
            row = _first_row(block, bad_nan)
            raise ValueError(
                f"Input {input_name} contains NaN (first in {_location(row, block_info)}); "
                "remove or impute missing values, e.g. with sklearn.impute.SimpleImputer, "
                "before passing the data."
            )
    return block  # the sum overflowed, but every value is finite


def _check_block_weights(block, *, block_info=None):
    """Raise ``ValueError`` if a block of sample weights is not finite or has negatives.

    Parameters
    ----------
    block : array
        A 1-D block of sample weights (NumPy, CuPy or array-API).
    block_info : dict, default=None
        Filled in by ``dask.array.map_blocks``; gives the row and partition in the message.

    Returns
    -------
    block : array
        The input block, unchanged.
    """
    _check_block_finite(block, input_name="sample_weight", block_info=block_info)
    xp = get_namespace(block)
    if math.prod(block.shape) and bool(xp.any(block < 0)):
        row = _first_row(block, block < 0)
        raise ValueError(
            f"sample_weight contains negative values (first in {_location(row, block_info)}); "
            "sample weights must be >= 0. Pass non-negative weights, e.g. numpy.clip(w, 0, None)."
        )
    return block


def check_finite(X, *, name="X", allow_nan=False):
    """Attach a NaN/infinity check to ``X`` that runs inside the first pass over the data.

    Nothing is computed here: the check is a ``map_blocks`` layer whose block function returns
    each block unchanged (no copy) after checking it, so it costs one reduction per block on the
    pass that reads the data anyway (typically the ``persist`` at the start of ``fit``). A bad
    value raises ``ValueError`` at that compute, naming the first bad row and its partition.

    Parameters
    ----------
    X : dask.array.Array
        The data (1-D or 2-D; NumPy, CuPy or scipy.sparse chunks).
    name : str, default="X"
        Name of the input in the error message (``"Input X contains NaN ..."``).
    allow_nan : bool, default=False
        Accept NaN; infinity is still refused.

    Returns
    -------
    dask.array.Array
        ``X`` with the check attached (``X`` itself when its dtype cannot hold NaN).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> X = da.from_array(np.array([[1.0, np.nan], [2.0, 3.0]]), chunks=1)
    >>> checked = check_finite(X)  # no compute yet
    >>> checked.compute()  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: Input X contains NaN (first in row 0, which is row 0 of partition 0); ...
    """
    if np.dtype(X.dtype).kind != "f":
        return X
    token = tokenize(X, name, allow_nan)
    return X.map_blocks(
        _check_block_finite,
        input_name=name,
        allow_nan=allow_nan,
        dtype=X.dtype,
        meta=X._meta,
        name=f"skdml-validate-finite-{token}",
    )


# --------------------------------------------------------------------------------------
# The adapted input and its wrapper
# --------------------------------------------------------------------------------------
@dataclass
class Adapted:
    """Input data adapted to skdml's one layout, and how to give outputs back.

    Parameters
    ----------
    X : dask.array.Array
        The data: 2-D, chunked by rows only (one chunk along features), no zero-row chunk,
        known chunk sizes, floating dtype (float32 stays float32, integers and booleans become
        float64) unless another ``dtype`` was asked of :func:`adapt_X`. Chunks are NumPy,
        CuPy or scipy.sparse CSR.
    kind : str
        What the caller passed: ``"numpy"``, ``"list"``, ``"sparse"``, ``"cupy"``, ``"dask"``,
        ``"xarray"``, ``"pandas"`` or ``"dask-dataframe"``.
    index : object, default=None
        ``pandas.Index`` of a DataFrame input, or for an xarray input a dict mapping each
        coordinate that runs along the sample dimension to that coordinate.
    sample_dim : str or None, default=None
        Name of the sample dimension of an xarray input.
    feature_names : numpy.ndarray or None, default=None
        Column names (DataFrames) or feature coordinate (xarray) when all are str, as an
        object array like scikit-learn's ``feature_names_in_``.
    lazy : bool, default=False
        True when the caller's data were Dask-backed (outputs then stay lazy).
    finite_checked : bool, default=True
        False when the NaN/infinity check of ``X``'s values was left to the caller
        (``adapt_X(defer_finite=True)``).

    Attributes
    ----------
    n_samples : int
        Number of rows.
    n_features : int
        Number of columns.
    """

    X: da.Array
    kind: str
    index: object = None
    sample_dim: str | None = None
    feature_names: np.ndarray | None = None
    lazy: bool = False
    finite_checked: bool = True

    @property
    def n_samples(self) -> int:
        """Number of rows of :attr:`X`."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of columns of :attr:`X`."""
        return int(self.X.shape[1])

    def wrap(self, out, *, kind="samples", columns=None, dim="component"):
        """Give an output back in the type the caller passed, the way scikit-learn would.

        NumPy, list, scipy.sparse and pandas input give a computed array (NumPy, or CuPy for
        CuPy chunks); Dask array and Dask DataFrame input give the lazy Dask array itself;
        xarray input gives a ``DataArray`` (lazy when the input was Dask-backed) whose first
        dimension is the input's sample dimension with its coordinates.

        Parameters
        ----------
        out : dask.array.Array
            The output, lazily computed. With ``kind="samples"`` its first axis runs over the
            input's samples (1-D, e.g. labels, or 2-D, e.g. a transform).
        kind : {"samples", "scalar"}, default="samples"
            ``"samples"`` for per-sample outputs; ``"scalar"`` for a 0-D result (a score),
            returned as a Python/NumPy scalar for in-memory input and left lazy for Dask input.
        columns : array-like or None, default=None
            Labels of the second axis of a 2-D output (e.g. class labels or feature names),
            used as that dimension's coordinate for xarray output.
        dim : str, default="component"
            Name of the second dimension of a 2-D xarray output.

        Returns
        -------
        numpy.ndarray, dask.array.Array, xarray.DataArray or scalar
            The output in the caller's type.
        """
        if kind not in ("samples", "scalar"):
            raise ValueError(f"kind must be 'samples' or 'scalar'; got {kind!r}.")
        if not is_dask_array(out):
            return out
        if kind == "scalar":
            if self.lazy:
                return out
            value = out.compute()
            return value[()] if hasattr(value, "shape") and value.shape == () else value
        if self.kind == "xarray":
            import xarray as xr

            data = out if self.lazy else out.compute()
            if out.ndim == 1:
                dims = (self.sample_dim,)
            else:
                dims = (self.sample_dim, dim) + tuple(f"dim_{i}" for i in range(2, out.ndim))
            coords = dict(self.index or {})
            if columns is not None and out.ndim >= 2:
                coords[dim] = np.asarray(columns)
            result = xr.DataArray(data, dims=dims, coords=coords)
            result.name = None  # xarray would take the Dask array's key as the name
            return result
        if self.lazy:
            return out
        return out.compute()


def _to_csr(block):
    """A sparse block in CSR format (the format every skdml kernel expects)."""
    return block.tocsr()


def _adapt_dask_array(X, *, kind, accept_sparse, estimator_name, dtype, allow_nan, chunks,
                      index=None, sample_dim=None, feature_names=None, defer_finite=False):
    """Metadata checks and lazy conversion of a Dask array (the path of all Dask input)."""
    meta = X._meta
    if _issparse(meta):
        if not accept_sparse:
            raise TypeError(
                f"{estimator_name} does not accept sparse input, but got a Dask array with "
                f"{type(meta).__name__} chunks. Convert the chunks with "
                "X.map_blocks(lambda b: b.toarray()) or use an estimator that accepts sparse data."
            )
    elif not ((isinstance(meta, np.ndarray) and not isinstance(meta, (np.ma.MaskedArray,
                                                                      np.matrix)))
              or is_cupy_array(meta)):
        raise TypeError(
            f"{estimator_name} needs Dask arrays with NumPy or CuPy chunks; got chunks of type "
            f"{type(meta).__module__}.{type(meta).__qualname__}. Convert them, e.g. with "
            "X.map_blocks(numpy.asarray)."
        )
    if X.ndim != 2:
        raise ValueError(_ndim_message(X.ndim, X.shape))
    if any(math.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(_unknown_chunks_message())
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(_empty_message(X.shape, estimator_name))
    _check_dtype_kind(X.dtype)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if chunks is not None:
        X = X.rechunk((chunks, -1))
    X = _drop_empty_row_chunks(X)
    if _issparse(meta) and meta.format != "csr":
        X = X.map_blocks(_to_csr, dtype=X.dtype, meta=meta.tocsr())
    target = _target_dtype(X.dtype, dtype)
    if X.dtype != target:
        X = X.astype(target)
    if not defer_finite:
        X = check_finite(X, name="X", allow_nan=allow_nan)
    return Adapted(X=X, kind=kind, index=index, sample_dim=sample_dim,
                   feature_names=feature_names, lazy=True, finite_checked=not defer_finite)


def _from_memory(arr, *, chunks, sparse=False):
    """Wrap an in-memory 2-D array (NumPy, CuPy or CSR) in a row-chunked Dask array.

    Unlike :func:`dask.array.from_array`, which copies its input, each chunk is a row slice of
    ``arr`` itself: views for NumPy and CuPy (no data are copied), row slices for CSR. Zero-row
    chunks are left out.
    """
    n_rows, n_features = arr.shape
    if chunks is None:
        if sparse:
            row_nbytes = (arr.nnz * (arr.dtype.itemsize + 4)) / max(n_rows, 1) + 4
        else:
            row_nbytes = n_features * arr.dtype.itemsize
        chunks = _default_row_chunk(n_rows, row_nbytes)
    rows, _ = normalize_chunks((chunks, -1), arr.shape, dtype=arr.dtype)
    return _rows_to_dask(arr, rows)


def _rows_to_dask(arr, rows):
    """A Dask array whose row chunks ``rows`` are slices of ``arr`` (any further axes whole).

    Chunks are views for NumPy and CuPy, so nothing is copied; zero-row chunks are skipped.
    """
    rows = tuple(int(r) for r in rows if r > 0)
    name = f"skdml-array-{tokenize(arr, rows)}"
    starts = np.cumsum((0,) + rows).tolist()
    tail = (0,) * (arr.ndim - 1)
    dsk = {(name, i) + tail: arr[starts[i]:starts[i + 1]] if len(rows) > 1 else arr
           for i in range(len(rows))}
    chunks = (rows,) + tuple((n,) for n in arr.shape[1:])
    return da.Array(dsk, name, chunks, meta=arr[:0], dtype=arr.dtype)


def adapt_X(X, *, accept_sparse=False, estimator_name="estimator", dtype="float",
            allow_nan=False, chunks=None, defer_finite=False) -> Adapted:
    """Check ``X`` and adapt it into a row-partitioned Dask array.

    Accepted inputs: NumPy arrays, lists of lists, scipy.sparse matrices and arrays (only with
    ``accept_sparse=True``; chunks are then CSR), CuPy arrays, Dask arrays (NumPy, CuPy or,
    with ``accept_sparse``, scipy.sparse chunks), ``xarray.DataArray`` (NumPy- or Dask-backed;
    the first dimension is the samples), pandas DataFrames and Dask DataFrames.

    In-memory input is checked eagerly with :func:`sklearn.utils.check_array` (its messages are
    scikit-learn's) and wrapped in a Dask array whose chunks are row slices (views) of it: no
    copy is made unless a dtype conversion is needed, and the caller's array is never written
    to (the caller should not change it either while a lazy result built from it is pending).
    Dask input is checked on its metadata (type, dimensions, dtype, shape, chunk sizes) and
    its values lazily with :func:`check_finite`, on the first pass over the data. A feature
    axis split into several chunks is rechunked to one chunk, and zero-row chunks are dropped.
    A Dask DataFrame is converted with ``to_dask_array(lengths=True)``, which reads the
    partitions once to learn their lengths.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data.
    accept_sparse : bool, default=False
        Whether scipy.sparse input is accepted. When False, sparse input raises ``TypeError``.
    estimator_name : str, default="estimator"
        Name of the estimator, used in error messages.
    dtype : "float", numpy dtype or None, default="float"
        ``"float"``: float32 and float16 give float32, other numeric dtypes float64.
        ``None``: keep the numeric dtype. A dtype: convert to it.
    allow_nan : bool, default=False
        Accept NaN values (infinity is always refused).
    chunks : int, tuple of int or str, default=None
        Row chunks for the Dask array (rows per chunk, explicit chunk sizes, or a Dask spec
        such as ``"auto"``). By default in-memory data get chunks of at most Dask's
        ``array.chunk-size`` (128 MiB), split further to use the cluster's threads when the
        data are large enough, and Dask input keeps its row chunks.
    defer_finite : bool, default=False
        For a Dask array, leave the NaN/infinity check of the values to the caller (the
        returned ``Adapted.finite_checked`` is then False). Only for a caller whose first pass
        over the data checks every value it reads, so that the check costs no pass of its own:
        SGD's kernel checks each row's score in the first epoch. Other input is checked here
        as always.

    Returns
    -------
    Adapted
        The Dask array and what is needed to wrap outputs.

    Raises
    ------
    ValueError
        For input that is not 2-D, has no rows or columns, holds complex, non-numeric, NaN or
        infinite values, or is a Dask array with unknown chunk sizes.
    TypeError
        For sparse input when ``accept_sparse=False``, or unsupported chunk types.

    Examples
    --------
    >>> import numpy as np
    >>> a = adapt_X(np.arange(6).reshape(3, 2))
    >>> a.kind, a.X.dtype, a.X.chunks
    ('numpy', dtype('float64'), ((3,), (2,)))
    >>> a.wrap(a.X[:, 0])
    array([0., 2., 4.])
    """
    common = dict(accept_sparse=accept_sparse, estimator_name=estimator_name, dtype=dtype,
                  allow_nan=allow_nan, chunks=chunks)
    # ---- Dask collections ----
    if is_dask_array(X):
        return _adapt_dask_array(X, kind="dask", defer_finite=defer_finite, **common)
    if _is_dask_series(X):
        raise ValueError(_ndim_message(1, "(n,)"))
    if _is_dask_frame(X):
        return _adapt_dask_frame(X, **common)
    if _module_class(X, "xarray", "Dataset"):
        raise TypeError(
            f"{estimator_name} takes an xarray.DataArray, not a Dataset. Stack the variables "
            "into one DataArray, e.g. ds.to_dataarray('feature').transpose(sample_dim, 'feature')."
        )
    if _is_xarray(X):
        return _adapt_xarray(X, **common)
    # ---- in memory ----
    if _issparse(X):
        if not accept_sparse:
            raise TypeError(
                f"{estimator_name} does not accept sparse input, but got a scipy.sparse "
                f"{type(X).__name__} of shape {X.shape}. Convert it with X.toarray() or use an "
                "estimator that accepts sparse data."
            )
        return _adapt_host(X, kind="sparse", **common)
    if is_cupy_array(X):
        return _adapt_cupy(X, **common)
    if _is_pandas_frame(X):
        names = _str_feature_names(X.columns, "column names")
        return _adapt_host(X, kind="pandas", index=X.index, feature_names=names, **common)
    if _is_pandas_series(X):
        raise ValueError(_ndim_message(1, X.shape))
    kind = "numpy" if isinstance(X, np.ndarray) else "list"
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"X could not be converted to an array ({exc}). Pass a 2-D array-like whose "
                "rows all have the same length, e.g. a list of equal-length lists."
            ) from exc
    return _adapt_host(X, kind=kind, **common)


def _adapt_host(X, *, kind, accept_sparse, estimator_name, dtype, allow_nan, chunks,
                index=None, feature_names=None, sample_dim=None, lazy=False):
    """Eager checks (through sklearn's ``check_array``) and wrapping of in-memory data."""
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        ndim = np.ndim(X)
    if ndim != 2:
        raise ValueError(_ndim_message(ndim, np.shape(X)))
    orig = getattr(X, "dtype", None)
    if orig is None and _is_pandas_frame(X):
        dtypes = list(X.dtypes)
        if dtypes and all(isinstance(d, np.dtype) for d in dtypes):
            orig = np.result_type(*dtypes)
    if isinstance(dtype, str) and dtype == "float":
        if orig is not None and np.dtype(orig).kind in "biuf":
            target = result_float_dtype(orig)
        else:
            target = [np.float64, np.float32]
    elif dtype is None:
        target = "numeric"
    else:
        target = np.dtype(dtype)
    sparse = _issparse(X)
    arr = check_array(
        X,
        accept_sparse="csr" if sparse else False,
        dtype=target,
        ensure_all_finite=False,
        ensure_2d=True,
        estimator=estimator_name,
        input_name="X",
    )
    if arr.dtype.kind == "O":  # pragma: no cover - check_array converts object to float
        _check_dtype_kind(arr.dtype)
    _check_block_finite(arr, input_name="X", allow_nan=allow_nan)
    return Adapted(X=_from_memory(arr, chunks=chunks, sparse=sparse), kind=kind, index=index,
                   sample_dim=sample_dim, feature_names=feature_names, lazy=lazy)


def _adapt_cupy(X, *, accept_sparse, estimator_name, dtype, allow_nan, chunks, kind="cupy",
                index=None, sample_dim=None, feature_names=None):  # pragma: no cover - GPU
    """Checks and wrapping of an in-memory CuPy array (metadata checks + one eager pass)."""
    if X.ndim != 2:
        raise ValueError(_ndim_message(X.ndim, X.shape))
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(_empty_message(X.shape, estimator_name))
    _check_dtype_kind(X.dtype)
    target = _target_dtype(X.dtype, dtype)
    if X.dtype != target:
        X = X.astype(target)
    _check_block_finite(X, input_name="X", allow_nan=allow_nan)
    return Adapted(X=_from_memory(X, chunks=chunks), kind=kind, index=index,
                   sample_dim=sample_dim, feature_names=feature_names)


def _adapt_xarray(X, **common):
    """A ``DataArray``: its data go through the matching path; coordinates are kept."""
    if X.ndim != 2:
        raise ValueError(_ndim_message(X.ndim, X.shape))
    sample_dim, feature_dim = X.dims
    index = {name: coord for name, coord in X.coords.items() if coord.dims == (sample_dim,)}
    names = None
    if feature_dim in X.coords:
        names = _str_feature_names(X.coords[feature_dim].values.tolist(),
                                   f"'{feature_dim}' coordinate values")
    extra = dict(index=index, sample_dim=sample_dim, feature_names=names)
    data = X.data
    if is_dask_array(data):
        return _adapt_dask_array(data, kind="xarray", **extra, **common)
    if is_cupy_array(data):  # pragma: no cover - GPU
        return _adapt_cupy(data, kind="xarray", **extra, **common)
    if _issparse(data):
        if not common["accept_sparse"]:
            raise TypeError(
                f"{common['estimator_name']} does not accept sparse input; convert the "
                "DataArray's data with .toarray() or use an estimator that accepts sparse data."
            )
        return _adapt_host(data, kind="xarray", **extra, **common)
    return _adapt_host(np.asarray(data), kind="xarray", **extra, **common)


def _adapt_dask_frame(X, **common):
    """A Dask DataFrame: numeric columns only, converted with ``to_dask_array(lengths=True)``."""
    from pandas.api import types as ptypes

    bad = [(col, str(dt)) for col, dt in X.dtypes.items()
           if not (ptypes.is_numeric_dtype(dt) or ptypes.is_bool_dtype(dt))
           or ptypes.is_complex_dtype(dt)]
    if bad:
        if any(ptypes.is_complex_dtype(dt) for dt in X.dtypes):
            raise ValueError(
                f"Complex data not supported: columns {[c for c, _ in bad]} are complex. Pass "
                "real numbers, e.g. their .real or abs()."
            )
        raise ValueError(
            f"X has non-numeric columns {[c for c, _ in bad]} (dtypes {[d for _, d in bad]}), "
            "but skdml needs numeric data. Encode or drop them first, e.g. with "
            "sklearn.preprocessing.OrdinalEncoder or X.drop(columns=[...])."
        )
    names = _str_feature_names(X.columns, "column names")
    dtypes = list(X.dtypes)
    if not all(isinstance(d, np.dtype) for d in dtypes):
        # Nullable / extension dtypes: cast in pandas, so missing values become NaN.
        X = X.astype(np.float64)
    arr = X.to_dask_array(lengths=True)
    return _adapt_dask_array(arr, kind="dask-dataframe", feature_names=names, **common)


# --------------------------------------------------------------------------------------
# Targets and weights
# --------------------------------------------------------------------------------------
def _host_values(y, name):
    """An in-memory target or weight (list, NumPy, pandas) as a NumPy array."""
    if _is_pandas_series(y) or _is_pandas_frame(y):
        from pandas.api import types as ptypes

        dtypes = [y.dtype] if _is_pandas_series(y) else list(y.dtypes)
        if all(ptypes.is_numeric_dtype(d) and not ptypes.is_bool_dtype(d) for d in dtypes) and \
                not all(isinstance(d, np.dtype) for d in dtypes):
            return y.to_numpy(dtype=np.float64, na_value=np.nan)
        return y.to_numpy()
    try:
        return np.asarray(y)
    except ValueError as exc:
        raise ValueError(
            f"{name} could not be converted to an array ({exc}); pass a 1-D array-like with "
            "one value per sample."
        ) from exc


def _check_same_backend(X, other):
    """``TypeError`` (from :func:`get_namespace`) when ``other`` is an array of another library.

    Lists, scalars and pandas objects carry no backend and are converted later.
    """
    if is_dask_array(other) or is_cupy_array(other) or hasattr(other, "__array_namespace__"):
        get_namespace(X, other)


def _length_check(n_x, n_y, name):
    if n_x != n_y:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: [{n_x}, {n_y}]; "
            f"X has {n_x} rows but {name} has {n_y}. Pass one {name} value per row of X."
        )


def adapt_y(y, adapted_X, *, y_numeric=False, name="y", estimator_name="estimator"):
    """Check targets and chunk them exactly like ``adapted_X.X``'s rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets: NumPy, list, pandas Series/DataFrame, CuPy, Dask array, Dask Series/DataFrame
        or xarray.DataArray. Classification labels may be strings or integers.
    adapted_X : Adapted
        The adapted ``X`` of the same call (gives row count, row chunks and backend).
    y_numeric : bool, default=False
        Regression targets: convert to a floating dtype (float32 stays float32, others become
        float64). Otherwise the dtype is kept.
    name : str, default="y"
        Name of the input in error messages.
    estimator_name : str, default="estimator"
        Name of the estimator, used in error messages.

    Returns
    -------
    dask.array.Array
        1-D (or 2-D for multi-output) Dask array with the same row chunks as ``adapted_X.X``.
        Floating targets are checked for NaN and infinity (eagerly for in-memory input,
        lazily on the first pass for Dask input).

    Raises
    ------
    ValueError
        For ``y=None``, a length different from ``X``'s, complex values, NaN or infinity,
        0-D or >2-D targets, or non-numeric targets with ``y_numeric=True``.
    TypeError
        When ``y`` and ``X`` come from different array libraries (e.g. CuPy and NumPy).
    """
    if y is None:
        raise ValueError(
            f"{estimator_name} requires y to be passed, but the target y is None; pass the "
            "targets as the second argument of fit."
        )
    Xd = adapted_X.X
    n = Xd.shape[0]
    _check_same_backend(Xd, y)
    if _is_dask_series(y) or _is_dask_frame(y):
        y = y.to_dask_array(lengths=True)
    elif _is_xarray(y):
        y = y.data
    if is_dask_array(y) or is_cupy_array(y):
        if y.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be 1-D (or 2-D for several outputs); got a {y.ndim}-D array of "
                f"shape {tuple(y.shape)}. Reshape it, e.g. with {name}.reshape(-1)."
            )
        if is_dask_array(y) and any(math.isnan(c) for axis in y.chunks for c in axis):
            raise ValueError(_unknown_chunks_message(name))
        _check_y_dtype(y.dtype, y_numeric, name)
        _length_check(n, y.shape[0], name)
        get_namespace(Xd, y)
        if y_numeric:
            target = result_float_dtype(y.dtype) if y.dtype.kind in "biuf" else np.float64
            if y.dtype != target:
                y = y.astype(target)
        if not is_dask_array(y):  # pragma: no cover - GPU
            _check_block_finite(y, input_name=name)
            return _rows_to_dask(y, Xd.chunks[0])
        y = y.rechunk((Xd.chunks[0],) + ((-1,) if y.ndim == 2 else ()))
        return check_finite(y, name=name)
    arr = _host_values(y, name)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (or 2-D for several outputs); got a {arr.ndim}-D array of "
            f"shape {arr.shape}. Reshape it, e.g. with {name}.reshape(-1)."
        )
    _check_y_dtype(arr.dtype, y_numeric, name)
    _length_check(n, arr.shape[0], name)
    get_namespace(Xd, arr)
    if y_numeric:
        target = result_float_dtype(arr.dtype) if arr.dtype.kind in "biuf" else np.float64
        if arr.dtype != target:
            try:
                arr = arr.astype(target)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name} must be numeric for this estimator, but it has dtype {arr.dtype} "
                    f"that could not be converted to float ({exc}). Pass numbers."
                ) from exc
    _check_block_finite(arr, input_name=name)
    return _rows_to_dask(arr, Xd.chunks[0])


def _check_y_dtype(dtype, y_numeric, name):
    """Refuse complex targets, and non-numeric ones when numbers are needed."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {dtype}. Pass real numbers, e.g. "
            f"{name}.real."
        )
    if y_numeric and dtype.kind in "USVMm":
        raise ValueError(
            f"{name} must be numeric for this estimator, but it has dtype {dtype}. Pass "
            "numbers, e.g. encode labels with sklearn.preprocessing.LabelEncoder."
        )


_ALL_ZERO_MESSAGE = (
    "Sample weights must contain at least one non-zero number; got all zeros. Give at least "
    "one sample a positive weight."
)


def adapt_sample_weight(sample_weight, adapted_X, *, allow_all_zero=False):
    """Check sample weights and chunk them exactly like ``adapted_X.X``'s rows.

    Parameters
    ----------
    sample_weight : None, float or array-like of shape (n_samples,)
        ``None`` means unit weights (and returns ``None``); a scalar gives every sample that
        weight; an array (NumPy, list, pandas, CuPy, Dask or xarray) gives one weight per
        sample.
    adapted_X : Adapted
        The adapted ``X`` of the same call.
    allow_all_zero : bool, default=False
        Accept weights that are all zero. The check is made for scalars and in-memory
        weights; for Dask weights it would need its own pass over the data, so it is left to
        the estimator (which usually sums the weights anyway).

    Returns
    -------
    dask.array.Array or None
        1-D weights of ``X``'s floating dtype with ``X``'s row chunks, or ``None``. Weights
        must be finite and >= 0: checked eagerly for in-memory input and lazily, on the first
        pass, for Dask input.

    Raises
    ------
    ValueError
        For a wrong shape, non-numeric, NaN, infinite or negative weights.
    TypeError
        When the weights and ``X`` come from different array libraries.
    """
    if sample_weight is None:
        return None
    Xd = adapted_X.X
    n = Xd.shape[0]
    _check_same_backend(Xd, sample_weight)
    dtype = Xd.dtype if np.dtype(Xd.dtype).kind == "f" else np.dtype(np.float64)
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        if not (math.isfinite(sample_weight) and sample_weight >= 0):
            raise ValueError(
                f"sample_weight must be finite and >= 0; got {sample_weight!r}. Pass a "
                "non-negative number or one weight per sample."
            )
        if sample_weight == 0 and not allow_all_zero:
            raise ValueError(_ALL_ZERO_MESSAGE)
        w = da.full((n,), sample_weight, chunks=(Xd.chunks[0],), dtype=dtype)
        if is_cupy_array(Xd):  # pragma: no cover - GPU
            import cupy

            w = w.map_blocks(cupy.asarray, dtype=dtype, meta=cupy.empty((0,), dtype=dtype))
        return w
    if _is_dask_series(sample_weight):
        sample_weight = sample_weight.to_dask_array(lengths=True)
    elif _is_xarray(sample_weight):
        sample_weight = sample_weight.data
    lazy = is_dask_array(sample_weight)
    w = sample_weight if lazy or is_cupy_array(sample_weight) else _host_values(
        sample_weight, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n:
        if lazy and any(math.isnan(c) for c in w.chunks[0]):
            raise ValueError(_unknown_chunks_message("sample_weight"))
        raise ValueError(
            f"sample_weight has shape {tuple(w.shape)} but X has {n} samples; pass one weight "
            f"per sample, an array of shape ({n},)."
        )
    if np.dtype(w.dtype).kind not in "biuf":
        raise ValueError(
            f"sample_weight must be numeric, but it has dtype {w.dtype}. Pass numbers."
        )
    get_namespace(Xd, w)
    if w.dtype != dtype:
        w = w.astype(dtype)
    if lazy:
        w = w.rechunk((Xd.chunks[0],))
        return w.map_blocks(_check_block_weights, dtype=w.dtype, meta=w._meta,
                            name=f"skdml-validate-weights-{tokenize(w)}")
    _check_block_weights(w)
    if not allow_all_zero and n and not bool(get_namespace(w).any(w != 0)):
        raise ValueError(_ALL_ZERO_MESSAGE)
    return _rows_to_dask(w, Xd.chunks[0])


# --------------------------------------------------------------------------------------
# Feature count and names
# --------------------------------------------------------------------------------------
def check_n_features(estimator, adapted, *, reset):
    """Set (``reset=True``) or check the feature count and names of ``estimator``.

    Parameters
    ----------
    estimator : estimator instance
        The estimator being fitted or used.
    adapted : Adapted
        The adapted input (gives the feature count and names).
    reset : bool
        ``True`` in ``fit``: set ``n_features_in_`` and ``feature_names_in_`` (or delete a stale
        ``feature_names_in_`` when the input has no names). ``False`` elsewhere: compare with
        the fitted values.

    Raises
    ------
    ValueError
        With ``reset=False``, when the feature names differ from those seen in ``fit``
        (unseen, missing or reordered names, worded like scikit-learn) or the feature count
        differs.

    Warns
    -----
    UserWarning
        With ``reset=False``, when only one of the fit data and the new data had feature names.
    """
    name = type(estimator).__name__
    n_features = adapted.X.shape[1]
    names = adapted.feature_names
    if reset:
        estimator.n_features_in_ = n_features
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            delattr(estimator, "feature_names_in_")
        return
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if names is not None and fitted_names is None:
        if hasattr(estimator, "n_features_in_"):
            warnings.warn(
                f"X has feature names, but {name} was fitted without feature names",
                UserWarning, stacklevel=3,
            )
    elif names is None and fitted_names is not None:
        warnings.warn(
            f"X does not have valid feature names, but {name} was fitted with feature names",
            UserWarning, stacklevel=3,
        )
    elif names is not None and fitted_names is not None:
        if len(names) != len(fitted_names) or np.any(names != fitted_names):
            raise ValueError(_feature_names_message(fitted_names, names))
    expected = getattr(estimator, "n_features_in_", None)
    if expected is None:
        return
    if n_features != expected:
        raise ValueError(
            f"X has {n_features} features, but {name} is expecting {expected} features as "
            "input; pass data with the same columns as fit."
        )


def _feature_names_message(fitted, given):
    """sklearn's wording for feature names that do not match those seen in fit."""
    fitted_set, given_set = set(fitted), set(given)
    unseen = sorted(given_set - fitted_set)
    missing = sorted(fitted_set - given_set)
    msg = "The feature names should match those that were passed during fit.\n"

    def listing(names, limit=5):
        out = "".join(f"- {n}\n" for n in names[:limit])
        return out + ("- ...\n" if len(names) > limit else "")

    if unseen:
        msg += "Feature names unseen at fit time:\n" + listing(unseen)
    if missing:
        msg += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unseen and not missing:
        msg += "Feature names must be in the same order as they were in fit.\n"
    return msg + "Pass data with the same columns, in the same order, as in fit."


# --------------------------------------------------------------------------------------
# Parameter constraints
# --------------------------------------------------------------------------------------
class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has an invalid type or value.

    Inherits from both ``ValueError`` and ``TypeError``, like scikit-learn's exception of the
    same name, and uses its wording: ``"The 'tol' parameter of KMeans must be a float in the
    range [0.0, inf). Got -1 instead."``
    """


def _type_name(t):
    """A readable name for a type: ``'int'``, ``'float'``, ``'numpy.ndarray'``."""
    if t is numbers.Integral:
        return "int"
    if t is numbers.Real:
        return "float"
    module = t.__module__
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"


class RealNotInt:
    """Marker type for :class:`Interval`: real numbers that are not integers.

    Use it when a parameter accepts an ``Interval(Integral, ...)`` and a disjoint interval of
    floats (e.g. a count or a fraction).
    """


class Interval:
    """Constraint: a number of a given type within an interval.

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real, RealNotInt}
        ``Integral`` accepts Python and NumPy integers (not floats, not bools); ``Real`` any
        real number including NumPy ones (not bools, not NaN); ``RealNotInt`` reals that are
        not integers.
    left, right : float, int or None
        Bounds; ``None`` is unbounded on that side.
    closed : {"left", "right", "both", "neither"}, default="left"
        Which bounds belong to the interval.

    Examples
    --------
    >>> from numbers import Real
    >>> Interval(Real, 0, None, closed="left").is_satisfied_by(0.5)
    True
    >>> str(Interval(Real, 0, None, closed="left"))
    'a float in the range [0.0, inf)'
    """

    def __init__(self, type, left, right, *, closed="left"):  # noqa: A002 - sklearn's name
        if type not in (numbers.Integral, numbers.Real, RealNotInt):
            raise TypeError(
                f"Interval type must be numbers.Integral, numbers.Real or RealNotInt; got {type!r}."
            )
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"closed must be 'left', 'right', 'both' or 'neither'; got {closed!r}."
            )
        if type is numbers.Integral:
            for bound in (left, right):
                if bound is not None and not isinstance(bound, numbers.Integral):
                    raise TypeError(f"Bounds of an Integral interval must be int; got {bound!r}.")
        if left is not None and right is not None and right < left:
            raise ValueError(f"right ({right}) must be >= left ({left}).")
        self.type = type
        self.left = left
        self.right = right
        self.closed = closed

    def _type_ok(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        if self.type is numbers.Integral:
            return isinstance(val, numbers.Integral)
        if not isinstance(val, numbers.Real) or math.isnan(val):
            return False
        if self.type is RealNotInt:
            return not isinstance(val, numbers.Integral)
        return True

    def is_satisfied_by(self, val):
        """True when ``val`` has the right type and lies in the interval."""
        if not self._type_ok(val):
            return False
        if self.left is not None:
            if val < self.left or (val == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if val > self.right or (val == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def _bound(self, b, default):
        if b is None:
            return default
        return float(b) if self.type is not numbers.Integral else b

    def __str__(self):
        type_str = "an int" if self.type is numbers.Integral else "a float"
        lb = "[" if self.closed in ("left", "both") and self.left is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        left = self._bound(self.left, "-inf")
        right = self._bound(self.right, "inf")
        return f"{type_str} in the range {lb}{left}, {right}{rb}"

    def __repr__(self):
        return (f"Interval({_type_name(self.type)}, {self.left!r}, {self.right!r}, "
                f"closed={self.closed!r})")


class StrOptions:
    """Constraint: one of a set of strings.

    Parameters
    ----------
    options : set of str
        The accepted strings.

    Examples
    --------
    >>> StrOptions({"lloyd", "elkan"}).is_satisfied_by("lloyd")
    True
    >>> str(StrOptions({"lloyd", "elkan"}))
    "a str among {'elkan', 'lloyd'}"
    """

    def __init__(self, options):
        if not all(isinstance(o, str) for o in options):
            raise TypeError(f"StrOptions takes a set of str; got {options!r}.")
        self.options = set(options)

    def is_satisfied_by(self, val):
        """True when ``val`` is one of the strings."""
        return isinstance(val, str) and val in self.options

    def __str__(self):
        return f"a str among {{{', '.join(repr(o) for o in sorted(self.options))}}}"

    __repr__ = __str__


class Options:
    """Constraint: one of a set of values of a given type.

    Parameters
    ----------
    type : type
        The accepted type (e.g. ``numbers.Real``).
    options : set
        The accepted values.

    Examples
    --------
    >>> from numbers import Real
    >>> Options(Real, {0.5, 1.0}).is_satisfied_by(0.5)
    True
    """

    def __init__(self, type, options):  # noqa: A002 - sklearn's name
        self.type = type
        self.options = set(options)

    def is_satisfied_by(self, val):
        """True when ``val`` is of the type and one of the options (bools only if asked)."""
        if isinstance(val, (bool, np.bool_)) and self.type not in (bool, np.bool_):
            return False
        return isinstance(val, self.type) and val in self.options

    def __str__(self):
        values = ", ".join(repr(o) for o in sorted(self.options, key=repr))
        return f"a {_type_name(self.type)} among {{{values}}}"

    __repr__ = __str__


def _is_array_like(val):
    """Array-like and not a scalar or string (like sklearn's ``"array-like"``)."""
    if isinstance(val, (str, bytes)) or np.isscalar(val):
        return False
    return hasattr(val, "__len__") or hasattr(val, "shape") or hasattr(val, "__array__")


def _is_random_state(val):
    """None, an int seed in [0, 2**32 - 1], a RandomState or a Generator."""
    if val is None or isinstance(val, (np.random.RandomState, np.random.Generator)):
        return True
    return (isinstance(val, numbers.Integral) and not isinstance(val, (bool, np.bool_))
            and 0 <= val <= 2**32 - 1)


_NAMED = {
    "array-like": (_is_array_like, "an array-like"),
    "sparse matrix": (_issparse, "a sparse matrix"),
    "random_state": (
        _is_random_state,
        "an int in the range [0, 4294967295], an instance of 'numpy.random.RandomState', "
        "an instance of 'numpy.random.Generator' or None",
    ),
    "boolean": (lambda v: isinstance(v, (bool, np.bool_)), "an instance of 'bool'"),
}


def _satisfied(constraint, val):
    """Whether ``val`` satisfies one constraint entry."""
    if constraint is None:
        return val is None
    if constraint is callable:
        return callable(val)
    if isinstance(constraint, str):
        try:
            return _NAMED[constraint][0](val)
        except KeyError:
            raise ValueError(
                f"Unknown constraint {constraint!r}; use one of {sorted(_NAMED)}, a type, None, "
                "callable, Interval, StrOptions or Options."
            ) from None
    if isinstance(constraint, type):
        return isinstance(val, constraint)
    return constraint.is_satisfied_by(val)


def _constraint_str(constraint):
    if constraint is None:
        return "None"
    if constraint is callable:
        return "a callable"
    if isinstance(constraint, str):
        return _NAMED[constraint][1]
    if isinstance(constraint, type):
        return f"an instance of {_type_name(constraint)!r}"
    return str(constraint)


def validate_params(estimator):
    """Check the parameters of ``estimator`` against its class's ``_parameter_constraints``.

    ``_parameter_constraints`` maps each parameter name to a list of accepted constraints
    (a value is valid when it satisfies any of them) or to ``"no_validation"``. Constraints:
    :class:`Interval`, :class:`StrOptions`, :class:`Options`, a type, ``None``, ``callable``,
    ``"array-like"``, ``"sparse matrix"``, ``"random_state"`` and ``"boolean"``.

    Parameters
    ----------
    estimator : estimator instance
        Its ``get_params(deep=False)`` are checked.

    Raises
    ------
    InvalidParameterError
        For the first invalid parameter, with scikit-learn's message:
        ``"The 'tol' parameter of KMeans must be a float in the range [0.0, inf). Got -1
        instead."``

    Examples
    --------
    >>> from numbers import Real
    >>> from sklearn.base import BaseEstimator
    >>> class Est(BaseEstimator):
    ...     _parameter_constraints = {"tol": [Interval(Real, 0, None, closed="left")]}
    ...     def __init__(self, tol=1e-4):
    ...         self.tol = tol
    >>> try:
    ...     validate_params(Est(tol=-1))
    ... except InvalidParameterError as exc:
    ...     print(exc)
    The 'tol' parameter of Est must be a float in the range [0.0, inf). Got -1 instead.
    """
    constraints = getattr(type(estimator), "_parameter_constraints", {})
    name = type(estimator).__name__
    for param, value in estimator.get_params(deep=False).items():
        if param not in constraints:
            continue
        allowed = constraints[param]
        if isinstance(allowed, str) and allowed == "no_validation":
            continue
        if any(_satisfied(c, value) for c in allowed):
            continue
        texts = [_constraint_str(c) for c in allowed]
        if len(texts) == 1:
            must = texts[0]
        else:
            must = f"{', '.join(texts[:-1])} or {texts[-1]}"
        raise InvalidParameterError(
            f"The {param!r} parameter of {name} must be {must}. Got {value!r} instead."
        )
