"""Tests of skdml._backend: namespaces, host copies, dtype policy and metadata helpers."""
import array_api_compat.numpy
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from skdml._backend import (
    asarray_like,
    backend_name,
    get_namespace,
    gpu_available,
    is_cupy_array,
    is_dask_array,
    meta_like,
    result_float_dtype,
    to_host,
)

xps = pytest.importorskip("array_api_strict")


# --------------------------------------------------------------------------------------
# get_namespace / backend_name
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("arrays, expected", [
    ((np.ones(3),), array_api_compat.numpy),
    ((np.ones(3), np.zeros((2, 2))), array_api_compat.numpy),
    ((da.ones((4, 2), chunks=2),), array_api_compat.numpy),
    ((da.ones(4, chunks=2), np.ones(4)), array_api_compat.numpy),
    ((None, np.ones(2), None), array_api_compat.numpy),
    ((), array_api_compat.numpy),
    ((sp.eye(3, format="csr"), np.ones(3)), array_api_compat.numpy),
], ids=["numpy", "numpy-pair", "dask", "dask-numpy", "none-ignored", "empty", "sparse"])
def test_get_namespace_numpy(arrays, expected):
    assert get_namespace(*arrays) is expected


def test_get_namespace_strict():
    a = xps.asarray([1.0, 2.0])
    assert get_namespace(a) is xps
    assert get_namespace(a, xps.asarray([3.0])) is xps
    assert backend_name(a) == "array_api_strict"


@pytest.mark.parametrize("others", [
    (np.ones(2),),
    (da.ones(2, chunks=1),),
    (np.ones(2), None),
], ids=["numpy", "dask", "numpy-none"])
def test_get_namespace_mixed_raises(others):
    with pytest.raises(TypeError, match=r"different array libraries \(array_api_strict, numpy\)"):
        get_namespace(xps.asarray([1.0]), *others)


@pytest.mark.parametrize("x, name", [
    (np.ones(2), "numpy"),
    (np.float64(1.0), "numpy"),
    (da.ones(2, chunks=1), "numpy"),
    (sp.eye(2, format="csr"), "numpy"),
    (da.from_array(sp.eye(4, format="csr"), chunks=2, asarray=False), "numpy"),
])
def test_backend_name(x, name):
    assert backend_name(x) == name


# --------------------------------------------------------------------------------------
# to_host
# --------------------------------------------------------------------------------------
def test_to_host_numpy_no_copy():
    a = np.arange(3.0)
    assert to_host(a) is a


@pytest.mark.parametrize("value", [None, 1.5, 3, np.float32(2.0)])
def test_to_host_scalars(value):
    assert to_host(value) is value


def test_to_host_strict():
    out = to_host(xps.asarray([1.0, 2.0]))
    assert isinstance(out, np.ndarray)
    assert_array_equal(out, [1.0, 2.0])


def test_to_host_containers():
    s = xps.asarray([1.0, 2.0])
    out = to_host({"a": s, "b": (s, 1.0), "c": [np.ones(1), s]})
    assert set(out) == {"a", "b", "c"}
    assert isinstance(out["a"], np.ndarray)
    assert isinstance(out["b"], tuple) and isinstance(out["b"][0], np.ndarray)
    assert out["b"][1] == 1.0
    assert isinstance(out["c"], list) and all(isinstance(v, np.ndarray) for v in out["c"])
    assert_array_equal(out["b"][0], [1.0, 2.0])


# --------------------------------------------------------------------------------------
# dtype policy
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, expected", [
    (np.float32, np.float32), (np.float16, np.float32), (np.float64, np.float64),
    (np.int8, np.float64), (np.int32, np.float64), (np.int64, np.float64),
    (np.uint8, np.float64), (bool, np.float64), ("float32", np.float32), ("i4", np.float64),
])
def test_result_float_dtype(dtype, expected):
    out = result_float_dtype(dtype)
    assert isinstance(out, np.dtype)
    assert out == np.dtype(expected)


# --------------------------------------------------------------------------------------
# meta_like / asarray_like / predicates
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("x, ndim, dtype, shape, out_dtype", [
    (np.ones((3, 2), dtype=np.float32), None, None, (0, 0), np.float32),
    (np.ones(3), 2, np.int64, (0, 0), np.int64),
    (da.ones((4, 2), chunks=2, dtype=np.float32), None, None, (0, 0), np.float32),
    (da.ones((4, 2), chunks=2), 1, None, (0,), np.float64),
])
def test_meta_like(x, ndim, dtype, shape, out_dtype):
    meta = meta_like(x, ndim=ndim, dtype=dtype)
    assert type(meta) is np.ndarray
    assert meta.shape == shape
    assert meta.dtype == out_dtype


def test_meta_like_usable_with_map_blocks():
    X = da.ones((6, 2), chunks=3)
    out = X.map_blocks(lambda b: b.sum(axis=1), drop_axis=1, meta=meta_like(X, ndim=1))
    assert_array_equal(out.compute(), np.full(6, 2.0))


@pytest.mark.parametrize("like", [np.ones(2), da.ones(2, chunks=1)], ids=["numpy", "dask"])
def test_asarray_like_numpy(like):
    out = asarray_like([1, 2], like, dtype=np.float32)
    assert type(out) is np.ndarray and out.dtype == np.float32
    assert_array_equal(out, [1.0, 2.0])


def test_asarray_like_strict():
    out = asarray_like(np.array([1.0, 2.0]), xps.asarray([0.0]))
    assert get_namespace(out) is xps
    assert_array_equal(to_host(out), [1.0, 2.0])
    out32 = asarray_like([1, 2], xps.asarray([0.0]), dtype=xps.float32)
    assert out32.dtype == xps.float32


def test_predicates_without_cupy():
    assert not is_cupy_array(np.ones(2))
    assert not is_cupy_array(da.ones(2, chunks=1))
    assert not is_cupy_array([1, 2])
    assert is_dask_array(da.ones(2, chunks=1))
    assert not is_dask_array(np.ones(2))


def test_gpu_available_false_here():
    try:
        import cupy  # noqa: F401
    except Exception:
        assert gpu_available() is False
    else:  # pragma: no cover - only on GPU machines
        pytest.skip("CuPy is installed; gpu_available depends on the hardware")
