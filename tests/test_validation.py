"""Tests of skdml._validation: input adapters, value checks and parameter constraints."""
import numbers
import re
import warnings

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator

from skdml._validation import (
    Adapted,
    InvalidParameterError,
    Interval,
    Options,
    RealNotInt,
    StrOptions,
    adapt_sample_weight,
    adapt_X,
    adapt_y,
    check_finite,
    check_n_features,
    validate_params,
)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _data(n=20, p=3, dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, p)).astype(dtype)


def _assert_layout(X):
    """One chunk along features, no zero-row chunk, known sizes."""
    assert isinstance(X, da.Array)
    assert X.ndim == 2
    assert len(X.chunks[1]) == 1
    assert all(c > 0 for c in X.chunks[0])
    assert not any(np.isnan(c) for c in X.chunks[0])


def _todense(block):
    return block.toarray() if sp.issparse(block) else block


def _unknown_chunks():
    X = da.from_array(_data(10, 2), chunks=5)
    return X[X[:, 0] > -100]  # boolean indexing: NaN chunk sizes


def _dask_sparse():
    return da.from_array(sp.random(10, 3, density=0.5, format="csr", random_state=0),
                         chunks=(5, -1), asarray=False)


# --------------------------------------------------------------------------------------
# bad X
# --------------------------------------------------------------------------------------
NAN = _data(6, 2)
NAN[3, 1] = np.nan
INF = _data(6, 2)
INF[2, 0] = np.inf

BAD_X = [
    ("0-D", lambda: 3.0, {}, ValueError, r"0-D array .*Reshape your data"),
    ("1-D numpy", lambda: np.arange(4.0), {}, ValueError,
     r"got a 1-D array of shape \(4,\).*Reshape your data.*reshape\(-1, 1\).*reshape\(1, -1\)"),
    ("1-D list", lambda: [1.0, 2.0], {}, ValueError, r"1-D array"),
    ("series", lambda: pd.Series([1.0, 2.0]), {}, ValueError, r"1-D array"),
    ("1-D dask", lambda: da.ones(4, chunks=2), {}, ValueError, r"1-D array"),
    ("dask series", lambda: dd.from_pandas(pd.Series([1.0, 2.0]), npartitions=1), {},
     ValueError, r"1-D array"),
    ("1-D xarray", lambda: xr.DataArray(np.ones(3), dims="s"), {}, ValueError, r"1-D array"),
    ("3-D numpy", lambda: np.ones((2, 2, 2)), {}, ValueError, r"3-D array.*Reshape your data"),
    ("3-D dask", lambda: da.ones((2, 2, 2)), {}, ValueError, r"3-D array"),
    ("strings", lambda: np.array([["a", "b"], ["c", "d"]]), {}, ValueError,
     r"could not convert string to float"),
    ("object dict", lambda: np.array([[{"a": 1}, 2.0], [1.0, 2.0]], dtype=object), {},
     TypeError, r"argument must be .* string.* number"),
    ("dask strings", lambda: da.from_array(np.array([["a", "b"]])), {}, ValueError,
     r"dtype <U1.*numeric"),
    ("complex", lambda: np.ones((3, 2)) + 1j, {}, ValueError, r"Complex data not supported"),
    ("dask complex", lambda: da.ones((3, 2), chunks=2) + 1j, {}, ValueError,
     r"Complex data not supported"),
    ("nan", lambda: NAN, {}, ValueError, r"Input X contains NaN \(first in row 3\).*impute"),
    ("inf", lambda: INF, {}, ValueError, r"Input X contains infinity.*first in row 2"),
    ("inf allow_nan", lambda: INF, {"allow_nan": True}, ValueError, r"infinity"),
    ("nan list", lambda: NAN.tolist(), {}, ValueError, r"Input X contains NaN"),
    ("nan sparse", lambda: sp.csr_matrix(NAN), {"accept_sparse": True}, ValueError,
     r"Input X contains NaN \(first in row 3\)"),
    ("0 samples", lambda: np.ones((0, 3)), {"estimator_name": "KMeans"}, ValueError,
     r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required"),
    ("0 features", lambda: np.ones((3, 0)), {}, ValueError, r"0 feature\(s\) \(shape=\(3, 0\)\)"),
    ("dask 0 samples", lambda: da.ones((0, 3)), {}, ValueError,
     r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required"),
    ("dask 0 features", lambda: da.ones((3, 0)), {}, ValueError, r"0 feature\(s\)"),
    ("sparse refused", lambda: sp.csr_matrix(np.eye(3)), {"estimator_name": "KMeans"},
     TypeError, r"KMeans does not accept sparse input.*toarray\(\)"),
    ("sparse array refused", lambda: sp.csr_array(np.eye(3)), {}, TypeError, r"sparse"),
    ("dask sparse refused", _dask_sparse, {}, TypeError, r"does not accept sparse"),
    ("unknown chunks", _unknown_chunks, {}, ValueError,
     r"unknown chunk sizes.*compute_chunk_sizes\(\).*lengths=True"),
    ("ragged", lambda: [[1.0, 2.0], [3.0]], {}, ValueError, r"same length"),
    ("dataset", lambda: xr.Dataset({"a": ("s", [1.0])}), {}, TypeError, r"DataArray"),
    ("mixed column names", lambda: pd.DataFrame([[1.0, 2.0]], columns=["a", 1]), {}, TypeError,
     r"Feature names are only supported if all input features have string names"),
    ("dask df strings",
     lambda: dd.from_pandas(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), npartitions=1),
     {}, ValueError, r"non-numeric columns \['b'\]"),
    ("dask chunk type", lambda: da.ones((4, 2), chunks=2).map_blocks(np.ma.masked_array), {},
     TypeError, r"NumPy or CuPy chunks"),
]


@pytest.mark.parametrize("make, kwargs, exc, match",
                         [case[1:] for case in BAD_X], ids=[case[0] for case in BAD_X])
def test_adapt_X_rejects(make, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        adapt_X(make(), **kwargs).X.compute()


@pytest.mark.parametrize("chunks", [(2, 3, 1), (6,)])
def test_dask_nan_is_lazy_and_located(chunks, counting_scheduler):
    X = da.from_array(NAN, chunks=(chunks, 1))
    sched = counting_scheduler
    with dask.config.set(scheduler=sched):
        adapted = adapt_X(X)
        assert sched.calls == 0
        with pytest.raises(ValueError, match=r"Input X contains NaN \(first in row 3, which is "
                                             r"row \d of partition \d\)"):
            adapted.X.compute()
    assert sched.calls == 1


def test_defer_finite_leaves_dask_values_to_the_caller():
    """defer_finite: a Dask array's values are not checked (the caller says it checks them as
    it reads them), and the Adapted says so; in-memory input is still checked at once."""
    a = adapt_X(da.from_array(NAN, chunks=2), defer_finite=True)
    assert not a.finite_checked
    assert np.isnan(a.X.compute()).sum() == 1
    assert adapt_X(da.from_array(NAN, chunks=2)).finite_checked
    with pytest.raises(ValueError, match="Input X contains NaN"):
        adapt_X(NAN, defer_finite=True)


def test_allow_nan_keeps_nan():
    a = adapt_X(NAN, allow_nan=True)
    assert np.isnan(a.X.compute()).sum() == 1
    b = adapt_X(da.from_array(NAN, chunks=2), allow_nan=True)
    assert np.isnan(b.X.compute()).sum() == 1


# --------------------------------------------------------------------------------------
# check_finite
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, match", [(np.nan, "Input X contains NaN"),
                                          (np.inf, "Input X contains infinity"),
                                          (-np.inf, "Input X contains infinity")])
def test_check_finite_lazy_then_raises(value, match, counting_scheduler):
    data = _data(12, 2)
    data[7, 1] = value
    X = da.from_array(data, chunks=(5, 2))
    sched = counting_scheduler
    with dask.config.set(scheduler=sched):
        checked = check_finite(X)
        assert sched.calls == 0
        with pytest.raises(ValueError, match=match + r" .*row 7, which is row 2 of partition 1"):
            checked.compute()
    assert sched.calls == 1


def test_check_finite_passes_blocks_through():
    data = _data(12, 2)
    X = da.from_array(data, chunks=(5, 2))
    checked = check_finite(X, name="y")
    assert checked.dtype == X.dtype and checked.chunks == X.chunks
    assert_array_equal(checked.compute(), data)
    # the block function returns the very block it was given (no copy)
    block = data[:5]
    from skdml._validation import _check_block_finite

    assert _check_block_finite(block) is block


def test_check_finite_1d_and_int():
    y = da.from_array(np.array([1.0, 2.0, np.nan]), chunks=2)
    with pytest.raises(ValueError, match=r"Input y contains NaN \(first in row 2"):
        check_finite(y, name="y").compute()
    Xi = da.ones((3, 2), dtype=int, chunks=2)
    assert check_finite(Xi) is Xi


def test_check_finite_overflowing_sum_is_fine():
    big = np.full((4, 2), np.finfo(np.float64).max)
    assert_array_equal(check_finite(da.from_array(big, chunks=2)).compute(), big)


# --------------------------------------------------------------------------------------
# round trips for every input type
# --------------------------------------------------------------------------------------
BASE = _data(20, 3)


def _xarray(data, chunks=None):
    arr = xr.DataArray(data, dims=("time", "feature"),
                       coords={"time": np.arange(100, 100 + len(data)),
                               "station": ("time", [f"s{i}" for i in range(len(data))]),
                               "feature": ["a", "b", "c"]})
    return arr.chunk({"time": chunks}) if chunks else arr


ROUND_TRIPS = [
    # id, make input, adapt kwargs, kind, wrap type, lazy
    ("numpy", lambda: BASE, {}, "numpy", np.ndarray),
    ("list", lambda: BASE.tolist(), {}, "list", np.ndarray),
    ("sparse csr", lambda: sp.csr_matrix(BASE), {"accept_sparse": True}, "sparse", np.ndarray),
    ("sparse coo array", lambda: sp.coo_array(BASE), {"accept_sparse": True}, "sparse",
     np.ndarray),
    ("dask even", lambda: da.from_array(BASE, chunks=(5, 3)), {}, "dask", da.Array),
    ("dask uneven", lambda: da.from_array(BASE, chunks=((3, 9, 1, 7), (3,))), {}, "dask",
     da.Array),
    ("dask feature chunks", lambda: da.from_array(BASE, chunks=((6, 14), (1, 2))), {}, "dask",
     da.Array),
    ("dask zero-row chunks", lambda: da.from_array(BASE, chunks=((0, 6, 0, 14, 0), (3,))), {},
     "dask", da.Array),
    ("dask sparse chunks", lambda: da.from_array(sp.csr_matrix(BASE), chunks=(7, -1),
                                                 asarray=False), {"accept_sparse": True},
     "dask", da.Array),
    ("xarray numpy", lambda: _xarray(BASE), {}, "xarray", xr.DataArray),
    ("xarray dask", lambda: _xarray(BASE, chunks=6), {}, "xarray", xr.DataArray),
    ("pandas", lambda: pd.DataFrame(BASE, columns=["a", "b", "c"], index=np.arange(20) * 2), {},
     "pandas", np.ndarray),
    ("dask dataframe",
     lambda: dd.from_pandas(pd.DataFrame(BASE, columns=["a", "b", "c"]), npartitions=3), {},
     "dask-dataframe", da.Array),
]


@pytest.mark.parametrize("make, kwargs, kind, out_type",
                         [case[1:] for case in ROUND_TRIPS], ids=[case[0] for case in ROUND_TRIPS])
def test_round_trip(make, kwargs, kind, out_type):
    X = make()
    a = adapt_X(X, **kwargs)
    assert isinstance(a, Adapted)
    assert a.kind == kind
    _assert_layout(a.X)
    assert a.X.dtype == np.float64
    assert (a.n_samples, a.n_features) == (20, 3)
    values = a.X.compute()
    values = values.toarray() if sp.issparse(values) else values
    assert_allclose(values, BASE)

    dense = a.X.map_blocks(_todense, dtype=a.X.dtype, meta=np.empty((0, 0)))
    out2 = a.wrap(dense * 2)
    out1 = a.wrap(dense[:, 0])
    assert isinstance(out2, out_type) and isinstance(out1, out_type)
    assert out1.shape == (20,) and out2.shape == (20, 3)
    dense1 = out1.compute() if isinstance(out1, da.Array) else np.asarray(out1)
    assert_allclose(dense1, BASE[:, 0])
    if kind in ("dask", "dask-dataframe"):
        assert out1 is not None and a.lazy
    if kind in ("pandas", "dask-dataframe") or (kind == "xarray"):
        assert_array_equal(a.feature_names, np.array(["a", "b", "c"], dtype=object))
        assert a.feature_names.dtype == object
    else:
        assert a.feature_names is None


@pytest.mark.parametrize("chunks", [None, 6])
def test_xarray_wrap_keeps_sample_coordinates(chunks):
    X = _xarray(BASE, chunks=chunks)
    a = adapt_X(X)
    assert a.sample_dim == "time"
    assert a.lazy is (chunks is not None)
    labels = a.wrap(a.X[:, 0] > 0)
    assert labels.dims == ("time",)
    assert_array_equal(labels["time"], X["time"])
    assert_array_equal(labels["station"], X["station"])
    assert labels.name is None
    assert isinstance(labels.data, da.Array) is (chunks is not None)
    assert_array_equal(labels.values, BASE[:, 0] > 0)
    scores = a.wrap(a.X[:, :2], columns=["k0", "k1"], dim="cluster")
    assert scores.dims == ("time", "cluster")
    assert_array_equal(scores["cluster"], ["k0", "k1"])
    default_dim = a.wrap(a.X[:, :2])
    assert default_dim.dims == ("time", "component")


def test_xarray_dask_chunks_follow_input():
    a = adapt_X(_xarray(BASE, chunks=6))
    assert a.X.chunks == ((6, 6, 6, 2), (3,))


def test_wrap_scalar_and_non_dask():
    a = adapt_X(BASE)
    s = a.wrap(a.X.sum(), kind="scalar")
    assert isinstance(s, (float, np.floating))
    assert_allclose(s, BASE.sum())
    b = adapt_X(da.from_array(BASE, chunks=5))
    assert isinstance(b.wrap(b.X.sum(), kind="scalar"), da.Array)
    already = np.ones(3)
    assert a.wrap(already) is already
    with pytest.raises(ValueError, match="kind must be"):
        a.wrap(a.X, kind="features")


def test_zero_row_chunks_dropped_exactly():
    X = da.from_array(BASE, chunks=((0, 6, 0, 14, 0), (3,)))
    a = adapt_X(X)
    assert a.X.chunks == ((6, 14), (3,))


def test_feature_axis_rechunked_rows_kept():
    X = da.from_array(BASE, chunks=((3, 9, 1, 7), (1, 1, 1)))
    a = adapt_X(X)
    assert a.X.chunks == ((3, 9, 1, 7), (3,))


@pytest.mark.parametrize("chunks, expected", [(5, (5, 5, 5, 5)), ((4, 16), (4, 16)),
                                              ((0, 20), (20,)), (7, (7, 7, 6))])
@pytest.mark.parametrize("as_dask", [False, True])
def test_chunks_argument(chunks, expected, as_dask):
    X = da.from_array(BASE, chunks=(10, 3)) if as_dask else BASE
    a = adapt_X(X, chunks=chunks)
    assert a.X.chunks == (expected, (3,))
    assert_allclose(a.X.compute(), BASE)


def test_default_chunks_small_input_one_chunk():
    assert adapt_X(BASE).X.chunks == ((20,), (3,))


def test_default_chunks_respect_chunk_size_limit():
    X = np.zeros((200, 5))
    with dask.config.set({"array.chunk-size": "1KiB"}):
        a = adapt_X(X)
    assert max(a.X.chunks[0]) * 5 * 8 <= 1024
    assert sum(a.X.chunks[0]) == 200


@pytest.mark.parametrize("in_dtype, out_dtype", [
    (np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32),
    (np.int64, np.float64), (np.int8, np.float64), (np.uint16, np.float64), (bool, np.float64),
])
@pytest.mark.parametrize("container", ["numpy", "dask", "pandas", "xarray", "sparse"])
def test_dtype_policy(in_dtype, out_dtype, container):
    data = (np.arange(12).reshape(6, 2) % 3).astype(in_dtype)
    if container == "dask":
        X = da.from_array(data, chunks=(4, 2))
    elif container == "pandas":
        X = pd.DataFrame(data)
    elif container == "xarray":
        X = xr.DataArray(data, dims=("s", "f"))
    elif container == "sparse":
        if in_dtype == np.float16:
            pytest.skip("scipy.sparse does not support float16")
        X = sp.csr_matrix(data)
    else:
        X = data
    a = adapt_X(X, accept_sparse=True)
    assert a.X.dtype == out_dtype
    values = a.X.compute()
    values = values.toarray() if sp.issparse(values) else values
    assert values.dtype == out_dtype
    assert_array_equal(values, data.astype(out_dtype))


def test_dtype_argument():
    data = np.arange(6).reshape(3, 2)
    assert adapt_X(data, dtype=None).X.dtype == data.dtype
    assert adapt_X(data, dtype=np.float32).X.dtype == np.float32
    assert adapt_X(da.from_array(data), dtype=None).X.dtype == data.dtype
    assert adapt_X(da.from_array(data), dtype=np.float32).X.dtype == np.float32


def test_list_of_ints_becomes_float64():
    a = adapt_X([[1, 2], [3, 4]])
    assert a.X.dtype == np.float64 and a.kind == "list"


def test_pandas_int_columns_have_no_feature_names():
    a = adapt_X(pd.DataFrame(BASE))
    assert a.feature_names is None
    assert a.index is not None


def test_dask_dataframe_with_empty_partition(c):
    pdf = pd.DataFrame(BASE, columns=["a", "b", "c"])
    ddf = dd.from_pandas(pdf, npartitions=4)
    ddf = ddf[ddf.a > 0.5]  # some partitions may end up empty
    a = adapt_X(ddf)
    _assert_layout(a.X)
    assert_allclose(a.X.compute(), pdf[pdf.a > 0.5].to_numpy())


def test_in_memory_input_on_client(c):
    a = adapt_X(BASE, chunks=7)
    y = adapt_y(np.arange(20), a)
    w = adapt_sample_weight(np.full(20, 2.0), a)
    total = (a.X.sum(axis=1) * w + y).sum()
    assert_allclose(a.wrap(total, kind="scalar"), 2 * BASE.sum() + np.arange(20).sum())
    assert_allclose(a.wrap(a.X[:, 1]), BASE[:, 1])


def test_dask_sparse_csc_chunks_become_csr():
    X = da.from_array(sp.csc_matrix(BASE), chunks=(7, -1), asarray=False)
    a = adapt_X(X, accept_sparse=True)
    assert a.X._meta.format == "csr"
    blocks = [a.X.blocks[i].compute() for i in range(a.X.numblocks[0])]
    assert all(sp.issparse(b) and b.format == "csr" for b in blocks)
    assert_allclose(sp.vstack(blocks).toarray(), BASE)


def test_dask_dataframe_nullable_dtypes():
    pdf = pd.DataFrame({"a": pd.array([1, 2, 3], dtype="Int64"), "b": [1.0, 2.0, 3.0]})
    a = adapt_X(dd.from_pandas(pdf, npartitions=2))
    assert a.X.dtype == np.float64
    assert_allclose(a.X.compute(), pdf.to_numpy(dtype=float))


def test_dask_input_is_not_computed(counting_scheduler):
    X = da.from_array(BASE, chunks=((3, 9, 0, 8), (2, 1))).astype(np.int32)
    sched = counting_scheduler
    with dask.config.set(scheduler=sched):
        a = adapt_X(X)
        y = adapt_y(da.arange(20, chunks=7), a)
        w = adapt_sample_weight(da.ones(20, chunks=4), a)
    assert sched.calls == 0
    assert y.chunks[0] == w.chunks[0] == a.X.chunks[0]


# --------------------------------------------------------------------------------------
# the caller's data are never changed (nor copied needlessly)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_numpy_input_not_mutated_nor_written(dtype):
    X = (_data(20, 3) * 10).astype(dtype)
    X.flags.writeable = False  # any write raises
    before = X.copy()
    a = adapt_X(X, chunks=6)
    y = adapt_y(np.arange(20), a)
    w = adapt_sample_weight(np.ones(20), a)
    out = a.wrap((a.X - a.X.mean(axis=0)) * w[:, None] + y[:, None])
    assert out.shape == (20, 3)
    assert_array_equal(X, before)
    assert X.dtype == dtype


def test_numpy_float_input_not_copied():
    X = _data(20, 3)
    a = adapt_X(X, chunks=10)
    # every block the kernels see is a view of the caller's array
    shared = a.X.map_blocks(lambda b: np.full((1, 1), np.shares_memory(b, X)),
                            chunks=((1, 1), (1,)), dtype=bool)
    assert shared.compute(scheduler="sync").all()
    y = np.arange(20.0)
    y_shared = adapt_y(y, a).map_blocks(lambda b: np.full(1, np.shares_memory(b, y)),
                                        chunks=((1, 1),), dtype=bool)
    assert y_shared.compute(scheduler="sync").all()


def test_pandas_input_not_mutated():
    df = pd.DataFrame(_data(20, 3), columns=["a", "b", "c"])
    before = df.copy()
    a = adapt_X(df)
    a.wrap(a.X * 0)
    pd.testing.assert_frame_equal(df, before)


def test_dask_input_not_mutated():
    data = _data(20, 3)
    data.flags.writeable = False
    X = da.from_array(data, chunks=7)
    a = adapt_X(X)
    assert_allclose(a.wrap(a.X + 1).compute(), data + 1)
    assert a.X is not X


# --------------------------------------------------------------------------------------
# y
# --------------------------------------------------------------------------------------
@pytest.fixture
def adapted():
    return adapt_X(da.from_array(_data(10, 2), chunks=((3, 0, 7), (2,))))


def test_adapt_y_chunks_and_dtypes(adapted):
    labels = np.array(list("abcabcabca"))
    y = adapt_y(labels, adapted)
    assert y.chunks == (adapted.X.chunks[0],)
    assert y.dtype == labels.dtype
    assert_array_equal(y.compute(), labels)
    y_int = adapt_y(list(range(10)), adapted)
    assert y_int.dtype.kind == "i"
    y_num = adapt_y(np.arange(10), adapted, y_numeric=True)
    assert y_num.dtype == np.float64
    y32 = adapt_y(np.arange(10, dtype=np.float32), adapted, y_numeric=True)
    assert y32.dtype == np.float32
    y_obj = adapt_y(np.arange(10).astype(object), adapted, y_numeric=True)
    assert y_obj.dtype == np.float64


@pytest.mark.parametrize("make", [
    lambda v: pd.Series(v),
    lambda v: da.from_array(v, chunks=4),
    lambda v: dd.from_pandas(pd.Series(v), npartitions=3),
    lambda v: xr.DataArray(v, dims="s"),
    lambda v: v.tolist(),
], ids=["series", "dask", "dask-series", "xarray", "list"])
def test_adapt_y_types(adapted, make):
    v = np.arange(10.0)
    y = adapt_y(make(v), adapted, y_numeric=True)
    assert y.chunks == (adapted.X.chunks[0],)
    assert_array_equal(y.compute(), v)


def test_adapt_y_2d(adapted):
    v = np.arange(20.0).reshape(10, 2)
    for y_in in (v, da.from_array(v, chunks=(5, 1))):
        y = adapt_y(y_in, adapted)
        assert y.chunks == (adapted.X.chunks[0], (2,))
        assert_array_equal(y.compute(), v)


def test_adapt_y_nullable_series(adapted):
    s = pd.Series(pd.array(range(10), dtype="Int64"))
    assert_array_equal(adapt_y(s, adapted, y_numeric=True).compute(), np.arange(10.0))


def _y_nan():
    v = np.arange(10.0)
    v[4] = np.nan
    return v


BAD_Y = [
    ("none", None, {}, ValueError, r"requires y to be passed, but the target y is None"),
    ("short", np.arange(9), {}, ValueError,
     r"Found input variables with inconsistent numbers of samples: \[10, 9\]"),
    ("short dask", da.arange(11, chunks=4), {}, ValueError, r"inconsistent numbers.*\[10, 11\]"),
    ("complex", np.ones(10) + 1j, {}, ValueError, r"Complex data not supported"),
    ("nan", _y_nan(), {}, ValueError, r"Input y contains NaN \(first in row 4\)"),
    ("inf", np.full(10, np.inf), {}, ValueError, r"Input y contains infinity"),
    ("nan dask", da.from_array(_y_nan(), chunks=3), {}, ValueError,
     r"Input y contains NaN \(first in row 4, which is row 1 of partition 1\)"),
    ("3-D", np.ones((10, 1, 1)), {}, ValueError, r"1-D \(or 2-D.*got a 3-D"),
    ("0-D", np.float64(1.0), {}, ValueError, r"got a 0-D"),
    ("strings numeric", np.array(list("abcdefghij")), {"y_numeric": True}, ValueError,
     r"must be numeric"),
    ("unknown chunks", _unknown_chunks()[:, 0], {}, ValueError, r"compute_chunk_sizes"),
    ("other library", None, {}, TypeError, r"different array libraries"),
]


@pytest.mark.parametrize("y, kwargs, exc, match", [case[1:] for case in BAD_Y],
                         ids=[case[0] for case in BAD_Y])
def test_adapt_y_rejects(adapted, y, kwargs, exc, match):
    if match == r"different array libraries":
        xps = pytest.importorskip("array_api_strict")
        y = xps.asarray(np.arange(10.0))
    with pytest.raises(exc, match=match):
        adapt_y(y, adapted, **kwargs).compute()


# --------------------------------------------------------------------------------------
# sample_weight
# --------------------------------------------------------------------------------------
def test_sample_weight_values(adapted):
    assert adapt_sample_weight(None, adapted) is None
    w = adapt_sample_weight(2, adapted)
    assert w.chunks == (adapted.X.chunks[0],) and w.dtype == np.float64
    assert_array_equal(w.compute(), np.full(10, 2.0))
    for w_in in (np.arange(10), list(range(10)), pd.Series(np.arange(10)),
                 da.arange(10, chunks=3), xr.DataArray(np.arange(10), dims="s")):
        w = adapt_sample_weight(w_in, adapted)
        assert w.chunks == (adapted.X.chunks[0],) and w.dtype == np.float64
        assert_array_equal(w.compute(), np.arange(10.0))


def test_sample_weight_follows_float32():
    a = adapt_X(_data(6, 2, np.float32))
    assert adapt_sample_weight(np.ones(6), a).dtype == np.float32
    assert adapt_sample_weight(1.5, a).dtype == np.float32


def _w_neg():
    w = np.ones(10)
    w[6] = -1
    return w


BAD_W = [
    ("negative", _w_neg(), ValueError, r"sample_weight contains negative values \(first in row 6"),
    ("negative dask", da.from_array(_w_neg(), chunks=4), ValueError,
     r"negative values \(first in row 6, which is row 3 of partition 1\)"),
    ("nan", np.r_[np.ones(9), np.nan], ValueError, r"Input sample_weight contains NaN"),
    ("inf dask", da.from_array(np.r_[np.ones(9), np.inf], chunks=5), ValueError,
     r"Input sample_weight contains infinity"),
    ("shape", np.ones(9), ValueError, r"sample_weight has shape \(9,\) but X has 10 samples"),
    ("2-D", np.ones((10, 1)), ValueError, r"sample_weight has shape \(10, 1\)"),
    ("scalar negative", -1.0, ValueError, r"finite and >= 0"),
    ("scalar nan", float("nan"), ValueError, r"finite and >= 0"),
    ("all zero", np.zeros(10), ValueError, r"Sample weights must contain at least one non-zero"),
    ("scalar zero", 0, ValueError, r"at least one non-zero"),
    ("strings", np.array(list("abcdefghij")), ValueError, r"must be numeric"),
]


@pytest.mark.parametrize("w, exc, match", [case[1:] for case in BAD_W],
                         ids=[case[0] for case in BAD_W])
def test_sample_weight_rejects(adapted, w, exc, match):
    with pytest.raises(exc, match=match):
        adapt_sample_weight(w, adapted).compute()


def test_sample_weight_all_zero_allowed(adapted):
    w = adapt_sample_weight(np.zeros(10), adapted, allow_all_zero=True)
    assert_array_equal(w.compute(), np.zeros(10))


# --------------------------------------------------------------------------------------
# feature count and names
# --------------------------------------------------------------------------------------
class KMeans(BaseEstimator):
    pass


def test_check_n_features_reset_and_mismatch():
    est = KMeans()
    check_n_features(est, adapt_X(np.ones((3, 10))), reset=True)
    assert est.n_features_in_ == 10
    assert not hasattr(est, "feature_names_in_")
    check_n_features(est, adapt_X(np.ones((2, 10))), reset=False)
    msg = ("X has 12 features, but KMeans is expecting 10 features as input; pass data with "
           "the same columns as fit.")
    with pytest.raises(ValueError, match=re.escape(msg)):
        check_n_features(est, adapt_X(np.ones((3, 12))), reset=False)


def test_check_n_features_unfitted_is_noop():
    est = KMeans()
    check_n_features(est, adapt_X(np.ones((3, 4))), reset=False)
    assert not hasattr(est, "n_features_in_")


def test_feature_names_set_and_stale_removed():
    est = KMeans()
    names = ["a", "b", "c"]
    check_n_features(est, adapt_X(pd.DataFrame(BASE, columns=names)), reset=True)
    assert_array_equal(est.feature_names_in_, names)
    assert est.feature_names_in_.dtype == object
    check_n_features(est, adapt_X(BASE), reset=True)
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("columns, message", [
    (["c", "b", "a"], "Feature names must be in the same order as they were in fit."),
    (["a", "b", "z"], "Feature names unseen at fit time:\n- z\n"),
    (["a", "b"], "Feature names seen at fit time, yet now missing:\n- c\n"),
])
def test_feature_names_mismatch(columns, message):
    est = KMeans()
    check_n_features(est, adapt_X(pd.DataFrame(BASE, columns=["a", "b", "c"])), reset=True)
    bad = pd.DataFrame(BASE[:, :len(columns)], columns=columns)
    expected = "The feature names should match those that were passed during fit.\n" + message
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_n_features(est, adapt_X(bad), reset=False)


def test_feature_names_warnings():
    est = KMeans()
    check_n_features(est, adapt_X(pd.DataFrame(BASE, columns=["a", "b", "c"])), reset=True)
    with pytest.warns(UserWarning, match="X does not have valid feature names, but KMeans was "
                                         "fitted with feature names"):
        check_n_features(est, adapt_X(BASE), reset=False)
    est2 = KMeans()
    check_n_features(est2, adapt_X(BASE), reset=True)
    with pytest.warns(UserWarning, match="X has feature names, but KMeans was fitted without "
                                         "feature names"):
        check_n_features(est2, adapt_X(pd.DataFrame(BASE, columns=["a", "b", "c"])),
                         reset=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_n_features(est, adapt_X(pd.DataFrame(BASE, columns=["a", "b", "c"])),
                         reset=False)


# --------------------------------------------------------------------------------------
# parameter constraints
# --------------------------------------------------------------------------------------
class Est(BaseEstimator):
    _parameter_constraints = {
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "frac": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left"),
                        Interval(RealNotInt, 0, 1, closed="right")],
        "init": [StrOptions({"k-means++", "random"}), callable, "array-like"],
        "power": [Options(numbers.Real, {1, 2.5})],
        "random_state": ["random_state"],
        "copy": ["boolean"],
        "weights": [np.ndarray, None],
        "matrix": ["sparse matrix", None],
        "anything": "no_validation",
    }

    def __init__(self, tol=1e-4, *, n_clusters=8, frac=0.5, max_samples=10, init="random",
                 power=1, random_state=None, copy=True, weights=None, matrix=None,
                 anything=None):
        self.tol = tol
        self.n_clusters = n_clusters
        self.frac = frac
        self.max_samples = max_samples
        self.init = init
        self.power = power
        self.random_state = random_state
        self.copy = copy
        self.weights = weights
        self.matrix = matrix
        self.anything = anything


GOOD_PARAMS = [
    {}, {"tol": 0}, {"tol": 0.0}, {"tol": np.float32(1e-3)}, {"tol": 5}, {"tol": np.int64(2)},
    {"n_clusters": 1}, {"n_clusters": np.int32(3)}, {"frac": 0.999}, {"max_samples": 0.5},
    {"max_samples": 1.0}, {"max_samples": 3}, {"init": "k-means++"}, {"init": lambda X: X},
    {"init": np.ones((2, 2))}, {"init": [[1, 2]]}, {"power": 2.5}, {"random_state": 0},
    {"random_state": np.random.RandomState(0)}, {"random_state": np.random.default_rng(0)},
    {"random_state": 2**32 - 1}, {"copy": False}, {"copy": np.bool_(True)},
    {"weights": np.ones(3)}, {"matrix": sp.eye(3, format="csr")}, {"anything": object()},
]

BAD_PARAMS = [
    ({"tol": -1}, "The 'tol' parameter of Est must be a float in the range [0.0, inf). Got -1 "
                  "instead."),
    ({"tol": True}, "The 'tol' parameter of Est must be a float in the range [0.0, inf). Got "
                    "True instead."),
    ({"tol": "1"}, "Got '1' instead."),
    ({"tol": float("nan")}, "Got nan instead."),
    ({"n_clusters": 2.0}, "The 'n_clusters' parameter of Est must be an int in the range "
                          "[1, inf). Got 2.0 instead."),
    ({"n_clusters": 0}, "Got 0 instead."),
    ({"n_clusters": False}, "Got False instead."),
    ({"frac": 0}, "must be a float in the range (0.0, 1.0). Got 0 instead."),
    ({"frac": 1.0}, "Got 1.0 instead."),
    ({"max_samples": 0}, "must be an int in the range [1, inf) or a float in the range "
                         "(0.0, 1.0]. Got 0 instead."),
    ({"max_samples": 1.5}, "Got 1.5 instead."),
    ({"init": "kmeans"}, "The 'init' parameter of Est must be a str among {'k-means++', "
                         "'random'}, a callable or an array-like. Got 'kmeans' instead."),
    ({"init": 3}, "Got 3 instead."),
    ({"power": 3}, "must be a float among {1, 2.5}. Got 3 instead."),
    ({"power": True}, "Got True instead."),
    ({"random_state": -1}, "The 'random_state' parameter of Est must be an int in the range "
                           "[0, 4294967295]"),
    ({"random_state": "0"}, "Got '0' instead."),
    ({"copy": 1}, "The 'copy' parameter of Est must be an instance of 'bool'. Got 1 instead."),
    ({"weights": [1, 2]}, "must be an instance of 'numpy.ndarray' or None. Got [1, 2] instead."),
    ({"matrix": np.eye(2)}, "must be a sparse matrix or None."),
]


@pytest.mark.parametrize("params", GOOD_PARAMS, ids=[str(sorted(p)) for p in GOOD_PARAMS])
def test_validate_params_accepts(params):
    validate_params(Est(**params))


@pytest.mark.parametrize("params, message", BAD_PARAMS, ids=[repr(p) for p, _ in BAD_PARAMS])
def test_validate_params_rejects(params, message):
    with pytest.raises(InvalidParameterError, match=re.escape(message)) as info:
        validate_params(Est(**params))
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    name = next(iter(params))
    # the pattern sklearn's check_param_validation uses
    assert re.match(rf"The '{name}' parameter of Est must be .* Got .* instead.",
                    str(info.value), flags=re.DOTALL)


def test_validate_params_bad_type_object():
    bad = type("BadType", (), {})()
    for name in Est._parameter_constraints:
        if name == "anything":
            continue
        with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of Est must"):
            validate_params(Est(**{name: bad}))


@pytest.mark.parametrize("make, exc", [
    (lambda: Interval(float, 0, 1), TypeError),
    (lambda: Interval(numbers.Real, 0, 1, closed="open"), ValueError),
    (lambda: Interval(numbers.Real, 2, 1), ValueError),
    (lambda: Interval(numbers.Integral, 0.5, 1), TypeError),
    (lambda: StrOptions({"a", 1}), TypeError),
])
def test_constraint_construction_errors(make, exc):
    with pytest.raises(exc):
        make()


def test_unknown_named_constraint():
    class Bad(BaseEstimator):
        _parameter_constraints = {"a": ["no-such-thing"]}

        def __init__(self, a=1):
            self.a = a

    with pytest.raises(ValueError, match="Unknown constraint 'no-such-thing'"):
        validate_params(Bad())


@pytest.mark.parametrize("interval, inside, outside", [
    (Interval(numbers.Real, 0, 1, closed="both"), [0, 1, 0.5], [-0.1, 1.1]),
    (Interval(numbers.Real, 0, 1, closed="left"), [0, 0.99], [1]),
    (Interval(numbers.Real, 0, 1, closed="right"), [1, 0.01], [0]),
    (Interval(numbers.Real, None, None), [-1e300, 1e300, np.float16(1)], [np.nan, True]),
    (Interval(numbers.Integral, None, 0, closed="right"), [0, -5, np.int8(-1)], [1, -1.0]),
    (Interval(RealNotInt, 0, None), [0.5, np.float32(2)], [1, np.int64(2)]),
])
def test_interval_membership(interval, inside, outside):
    assert all(interval.is_satisfied_by(v) for v in inside)
    assert not any(interval.is_satisfied_by(v) for v in outside)
