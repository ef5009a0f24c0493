"""What every lazy generator shares: argument checks, seeds, row chunking and graph assembly.

A generator is described by two pure functions:

* a *model* function, ``model_fn() -> model``, that draws the model-level random quantities
  (centers, covariance transforms, coefficients, item factors) from the seed stream
  ``SeedSequence(entropy, spawn_key=(0,))``. It is small, and it runs once per graph as the
  task ``skdml-make-<name>-model-<token>``; the client calls the same function when it has to
  return part of the model (``centers``, ``coef``, ``item_factors``), so both copies agree.
* a *chunk* function, ``chunk_fn(model, index, start, stop) -> tuple of arrays``, that draws the
  rows ``start:stop`` from ``SeedSequence(entropy, spawn_key=(1, index))``. It depends only on
  the seed, the chunk index and the model, so a retried or speculative copy gives the same block.

:func:`assemble` turns them into Dask arrays with one task per chunk
(``skdml-make-<name>-<token>``, returning a tuple) and one ``getitem`` task per chunk and output
(``skdml-make-<name>-<output>-<token>``). Nothing is computed or submitted while building.
"""
from __future__ import annotations

import numbers
import operator
from functools import partial

import dask
import numpy as np
from dask.highlevelgraph import HighLevelGraph
from dask.utils import parse_bytes

from .._backend import gpu_available

_MODEL_STREAM = 0
_CHUNK_STREAM = 1


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def check_int(value, name, *, minimum=1):
    """``value`` as a Python int >= ``minimum``, or a ``ValueError`` naming the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_real(value, name, *, low=None, high=None, low_closed=True, high_closed=True):
    """``value`` as a finite float inside the given interval, else a ``ValueError``."""
    lo_br = "[" if low_closed else "("
    hi_br = "]" if high_closed else ")"
    interval = (f"{lo_br}{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}{hi_br}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in {interval}; got {value!r}.")
    value = float(value)
    ok = np.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_closed else value > low
    if ok and high is not None:
        ok = value <= high if high_closed else value < high
    if not ok:
        raise ValueError(f"{name} must be a real number in {interval}; got {value!r}.")
    return value


def check_dtype(dtype):
    """The floating dtype of the generated data: float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be np.float32 or np.float64; got {dtype!r}.") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be np.float32 or np.float64; got {dtype!r}.")
    return dt


def check_array_type(array_type):
    """Check ``array_type`` upfront, so a missing CuPy fails before any graph is built."""
    if array_type == "numpy":
        return "numpy"
    if array_type != "cupy":
        raise ValueError(f"array_type must be 'numpy' or 'cupy'; got {array_type!r}.")
    try:
        import cupy  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "array_type='cupy' needs CuPy, which is not installed. Install the GPU extra "
            "(pip install 'skdml[gpu]') on a machine with a CUDA GPU, or use array_type='numpy'."
        ) from exc
    if not gpu_available():
        raise ValueError(
            "array_type='cupy' needs a CUDA GPU, but CuPy sees none. Run on a machine with a "
            "GPU and the GPU extra installed (pip install 'skdml[gpu]'), or use "
            "array_type='numpy'."
        )
    return "cupy"


def resolve_entropy(random_state):
    """A non-negative int that seeds everything, from ``random_state``.

    ``None`` draws fresh entropy from the OS (a different dataset each call); an int is used as
    is; a ``RandomState`` or ``Generator`` is advanced once to draw the seed.
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, (bool, np.bool_)
    ):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state!r}.")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, np.iinfo(np.int64).max, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, np.iinfo(np.int64).max))
    raise ValueError(
        "random_state must be None, a non-negative int, a numpy.random.RandomState or a "
        f"numpy.random.Generator; got {random_state!r}."
    )


def model_rng(entropy):
    """The generator of the model-level quantities (drawn once per dataset)."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_MODEL_STREAM,)))


def chunk_rng(entropy, index):
    """The generator of chunk ``index``: depends on the seed and the chunk index only."""
    return np.random.default_rng(
        np.random.SeedSequence(entropy, spawn_key=(_CHUNK_STREAM, int(index)))
    )


def row_chunks(n, chunks, row_bytes, name="n_samples", *, max_rows=None):
    """Rows per chunk as a tuple of ints summing to ``n``.

    ``chunks`` is an int (rows per chunk, the last chunk takes the rest), a sequence of positive
    ints summing to ``n``, or ``None``: as many rows as fit in Dask's ``array.chunk-size``
    (128 MiB by default) at ``row_bytes`` bytes per row, so a small dataset is one chunk.
    """
    if chunks is None:
        limit = parse_bytes(dask.config.get("array.chunk-size", "128MiB"))
        size = max(1, int(limit // max(float(row_bytes), 1.0)))
        if max_rows is not None:
            size = min(size, max_rows)
        chunks = min(n, size)
    if isinstance(chunks, numbers.Integral) and not isinstance(chunks, (bool, np.bool_)):
        if chunks < 1:
            raise ValueError(f"chunks must be a positive number of rows per chunk; got {chunks!r}.")
        chunks = int(chunks)
        q, r = divmod(n, chunks)
        return (chunks,) * q + ((r,) if r else ())
    if (isinstance(chunks, (tuple, list)) and len(chunks) == 1
            and isinstance(chunks[0], (tuple, list))):
        chunks = chunks[0]  # Dask's ((rows, ...),) form
    if isinstance(chunks, (tuple, list)) and chunks and all(
        isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)) and c >= 1
        for c in chunks
    ):
        out = tuple(int(c) for c in chunks)
        if sum(out) != n:
            raise ValueError(
                f"chunks must sum to {name}={n}; got {out} (sum {sum(out)})."
            )
        return out
    raise ValueError(
        "chunks must be None, a positive int (rows per chunk) or a sequence of positive ints "
        f"summing to {name}={n}; got {chunks!r}."
    )


def empty_meta(array_type, ndim, dtype):
    """A zero-size array of the chunk type, for Dask's ``meta``."""
    if array_type == "cupy":
        import cupy

        return cupy.empty((0,) * ndim, dtype=dtype)
    return np.empty((0,) * ndim, dtype=dtype)


# --------------------------------------------------------------------------------------------
# graph assembly
# --------------------------------------------------------------------------------------------
def _run_chunk(chunk_fn, to_cupy, model, index, start, stop):
    """Task body: generate one chunk with NumPy, then move it to the GPU when asked."""
    out = chunk_fn(model, index, start, stop)
    if to_cupy:
        import cupy

        out = tuple(cupy.asarray(o) for o in out)
    return out


def assemble(prefix, token, model_fn, chunk_fn, rows, outputs, *, array_type="numpy"):
    """Dask arrays whose chunk ``i`` is output ``j`` of ``chunk_fn(model, i, start, stop)``.

    Parameters
    ----------
    prefix : str
        Task-name prefix, e.g. ``"skdml-make-blobs"``.
    token : str
        Deterministic token of every argument (seed included).
    model_fn : callable
        No-argument function returning the model; runs as one task that all chunks read.
    chunk_fn : callable
        ``chunk_fn(model, index, start, stop)`` returning a tuple of NumPy/SciPy blocks, one per
        output.
    rows : tuple of int
        Rows per chunk.
    outputs : list of (suffix, chunks, meta)
        One entry per output: task-name suffix (``"X"``), the full Dask ``chunks`` (whose first
        entry may hold NaN for outputs of unknown length) and ``meta``.
    array_type : {"numpy", "cupy"}
        ``"cupy"`` moves every output block to the GPU inside the chunk task.

    Returns
    -------
    list of dask.array.Array
    """
    import dask.array as da

    base = f"{prefix}-{token}"
    model_key = f"{prefix}-model-{token}"
    run = partial(_run_chunk, chunk_fn, array_type == "cupy")
    shared = {model_key: (model_fn,)}
    start = 0
    for i, n in enumerate(rows):
        shared[(base, i)] = (run, model_key, i, start, start + n)
        start += n
    arrays = []
    for j, (suffix, chunks, meta) in enumerate(outputs):
        name = f"{prefix}-{suffix}-{token}"
        trail = (0,) * (len(chunks) - 1)
        layer = {(name, i) + trail: (operator.getitem, (base, i), j) for i in range(len(rows))}
        graph = HighLevelGraph({base: shared, name: layer}, {base: set(), name: {base}})
        arrays.append(da.Array(graph, name, chunks, meta=meta))
    return arrays
