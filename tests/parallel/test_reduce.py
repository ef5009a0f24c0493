"""tree_reduce, aggregate, allreduce and broadcast against NumPy references."""
import functools
import dask
import dask.array as da
import numpy as np
import pytest
from dask.utils import key_split
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import skdml
from skdml.parallel import (
    Replicated,
    aggregate,
    allreduce,
    broadcast,
    map_partitions,
    persist_partitions,
    tree_reduce,
)


def add(a, b):
    return {k: a[k] + b[k] for k in a} if isinstance(a, dict) else a + b


def _values(p, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(p)]


# -- tree_reduce -------------------------------------------------------------------------------
@pytest.mark.parametrize("split_every", [2, 3, 8])
@pytest.mark.parametrize("p", [1, 2, 5, 9, 17])
def test_tree_reduce_local_matches_numpy(p, split_every):
    vals = _values(p, (3, 2), np.float64)
    out = tree_reduce([dask.delayed(v) for v in vals], add, split_every=split_every)
    assert_allclose(out.compute(), np.sum(vals, axis=0))


def test_tree_reduce_depth_is_logarithmic():
    parts = [dask.delayed(i) for i in range(17)]
    out = tree_reduce(parts, add, split_every=2, name="t-depth")
    graph = dict(out.__dask_graph__())
    levels = {k[1] for k in graph if isinstance(k, tuple) and k[0].startswith("skdml-t-depth")}
    assert len(levels) == 5  # ceil(log2(17)), never a linear chain of 16
    assert out.compute() == sum(range(17))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=st.integers(1, 17), split_every=st.integers(2, 8),
       shape=st.sampled_from([(), (1,), (7,), (3, 4)]),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_tree_reduce_distributed_hypothesis(c, p, split_every, shape, dtype):
    vals = _values(p, shape, np.float64)
    vals = [np.asarray(v * 10).astype(dtype) for v in vals]
    futs = c.scatter(vals, hash=False)
    out = tree_reduce(futs, add, split_every=split_every).result()
    # any summation order is within (p - 1) eps sum|v| of the exact sum (exact for ints):
    # a relative bound alone fails where the terms cancel
    eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else 0.0
    atol = p * eps * np.sum(np.abs(np.asarray(vals, dtype=np.float64)), axis=0)
    expected = np.sum(np.asarray(vals, dtype=np.float64), axis=0)
    assert np.all(np.abs(np.asarray(out, dtype=np.float64) - expected) <= atol + 1e-12)
    assert np.asarray(out).dtype == dtype
    agg = aggregate(futs, add, split_every=split_every)
    assert np.all(np.abs(np.asarray(agg, dtype=np.float64) - expected) <= atol + 1e-12)


def test_tree_reduce_dict_and_tuple_payloads(c):
    vals = [{"sums": np.full((2, 3), i, float), "counts": np.arange(2.0) + i} for i in range(6)]
    out = tree_reduce(c.scatter(vals, hash=False), add, split_every=2).result()
    assert_allclose(out["sums"], np.full((2, 3), 15.0))
    assert_allclose(out["counts"], np.array([15.0, 21.0]))
    tup = [(np.ones(2) * i, i) for i in range(4)]
    out = tree_reduce(c.scatter(tup, hash=False), lambda a, b: (a[0] + b[0], a[1] + b[1])).result()
    assert_allclose(out[0], [6.0, 6.0]) and out[1] == 6


def test_tree_reduce_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        tree_reduce([], add)
    with pytest.raises(ValueError, match="split_every must be an int >= 2"):
        tree_reduce([dask.delayed(1)], add, split_every=1)


# -- allreduce ---------------------------------------------------------------------------------
def _reference(vals, op):
    stack = np.stack(vals)
    return {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0),
            "min": stack.min(0)}[op]


@pytest.mark.parametrize("shard", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("p", [1, 2, 5, 17])
def test_allreduce_matches_numpy_everywhere(c, p, op, shard):
    vals = _values(p, (5, 3), np.float64, seed=p)
    workers = list(c.nthreads())
    futs = [c.submit(lambda v: v, v, workers=[workers[i % len(workers)]], pure=False)
            for i, v in enumerate(vals)]
    rep = allreduce(futs, op=op, shard=shard)
    assert isinstance(rep, Replicated)
    expected = _reference(vals, op)
    results = {w: f.result() for w, f in rep.items()}
    assert set(results) == {workers[i % len(workers)] for i in range(p)}
    for value in results.values():
        assert_allclose(value, expected, rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=st.integers(1, 17), size=st.integers(1, 40), shard=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_allreduce_dict_payload_hypothesis(c, p, size, shard, dtype):
    rng = np.random.default_rng(size)
    vals = [{"coef": rng.standard_normal((2, size)).astype(dtype),
             "bias": (rng.standard_normal(2).astype(dtype),)} for _ in range(p)]
    rep = allreduce(c.scatter(vals, hash=False), op="sum", shard=shard)
    for out in (f.result() for f in rep.values()):
        assert out["coef"].dtype == dtype and out["coef"].shape == (2, size)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert_allclose(out["coef"], sum(v["coef"] for v in vals), rtol=tol, atol=tol)
        assert_allclose(out["bias"][0], sum(v["bias"][0] for v in vals), rtol=tol, atol=tol)


def test_allreduce_local_scheduler_and_callable_op():
    vals = _values(4, (3,), np.float64)
    rep = allreduce([dask.delayed(v) for v in vals], op=np.maximum)
    assert_allclose(rep.any().compute(), np.max(vals, axis=0))
    with pytest.raises(ValueError, match="op must be"):
        allreduce([dask.delayed(vals[0])], op="median")


def test_allreduce_result_feeds_next_stage_on_each_worker(c):
    X = da.from_array(np.arange(40.0).reshape(20, 2), chunks=(5, 2))
    parts = persist_partitions(X)
    sums = map_partitions(lambda b: b.sum(0), parts, combine=add, name="t-ar-sum")
    total = allreduce(sums, op="sum", name="t-ar")
    # each task receives its own worker's copy (Replicated arguments are substituted)
    scaled = map_partitions(lambda b, t: b / t, parts, total, name="t-ar-scale")
    out = np.concatenate([np.concatenate(v) if isinstance(v, list) else v
                          for v in c.gather(list(scaled))])
    idx = [i for p in scaled.partitions for i in p]
    expected = np.arange(40.0).reshape(20, 2) / np.arange(40.0).reshape(20, 2).sum(0)
    assert_allclose(out, np.concatenate([expected[5 * i:5 * i + 5] for i in idx]))


def _keys_named(fragment, dask_scheduler=None):
    return sorted(str(k) for k in dask_scheduler.tasks if fragment in str(k))


def _exact_total(b, t):
    return np.asarray(t)


def test_allreduce_fold_is_left_to_its_consumers(c):
    # on two workers the fold path: the next stage folds the partials itself (no fold task,
    # no task hop); a copy asked for is a task of its own, with the same bits
    X = da.from_array(np.random.default_rng(3).random((40, 3)), chunks=(5, 3))
    parts = persist_partitions(X)
    sums = map_partitions(lambda b: b.sum(0), parts, combine=add, name="t-lazy-sum")
    total = allreduce(sums, op="mean", name="t-lazy")
    used = map_partitions(_exact_total, parts, total, name="t-lazy-use")
    got = [v for per_worker in c.gather(list(used)) for v in per_worker]
    assert len(got) == 8
    assert c.run_on_scheduler(_keys_named, "t-lazy-fold") == []
    partials = c.gather(list(sums))
    assert_allclose(got[0], functools.reduce(add, partials) / len(partials), rtol=1e-14)
    copies = c.gather(total.values())
    assert len(c.run_on_scheduler(_keys_named, "t-lazy-fold")) == len(total) == 2
    for value in got + copies:
        assert_array_equal(value, got[0])  # every worker folded to the same bits
    assert total.for_worker(next(iter(total))) is not total[next(iter(total))]
    assert {f.key for f in total.values()} <= {f.key for f in total.held()}


def test_allreduce_result_on_the_client_has_the_workers_bits(c):
    # on the fold path the client folds the gathered partials itself: no fold task, and the
    # same bits as the copy each worker's tasks fold
    X = da.from_array(np.random.default_rng(4).random((40, 3)), chunks=(5, 3))
    parts = persist_partitions(X)
    sums = map_partitions(lambda b: b.sum(0) / 7, parts, combine=add, name="t-res-sum")
    total = allreduce(sums, op="sum", name="t-res")
    value = total.result()
    assert c.run_on_scheduler(_keys_named, "t-res-fold") == []
    used = map_partitions(_exact_total, parts, total, name="t-res-use")
    for per_worker in c.gather(list(used)):
        for copy in per_worker:
            assert_array_equal(copy, value)
    # a value with a copy on every worker (here sharded): one copy is gathered
    sharded = allreduce(sums, op="sum", name="t-res-shard", shard=True)
    assert all(h is not None for h in dict.values(sharded))
    assert_allclose(sharded.result(), value, rtol=1e-14)


def test_allreduce_result_local_scheduler():
    parts = [dask.delayed(np.arange(3.0) + i) for i in range(5)]
    assert_array_equal(allreduce(parts, op="sum").result(), np.arange(3.0) * 5 + 10)


# -- broadcast, map_partitions -----------------------------------------------------------------
def test_broadcast_one_copy_per_worker(c):
    rep = broadcast(np.arange(3.0))
    assert set(rep) == set(c.nthreads())
    c.gather(list(rep.values()))
    who = c.who_has(list(rep.values()))
    for w, f in rep.items():
        assert w in who[f.key]
        assert_array_equal(f.result(), np.arange(3.0))


@pytest.mark.parametrize("group_by", ["worker", "partition", 2])
@pytest.mark.parametrize("chunks", [(100,), (30, 30, 30, 10), (7,) * 14 + (2,)])
def test_map_partitions_groups_cover_every_partition(c, group_by, chunks):
    X = da.from_array(np.arange(200.0).reshape(100, 2), chunks=(chunks, 2))
    parts = persist_partitions(X)
    out = map_partitions(lambda b: b.sum(0), parts, combine=add, group_by=group_by,
                         name="t-group")
    covered = sorted(i for p in out.partitions for i in p)
    assert covered == list(range(len(chunks)))
    if group_by == "worker":
        assert len(out) <= sum(c.nthreads().values())
    assert_allclose(aggregate(out, add), np.arange(200.0).reshape(100, 2).sum(0))
    assert_allclose(tree_reduce(out, add, split_every=2).result(),
                    np.arange(200.0).reshape(100, 2).sum(0))


def test_map_partitions_with_index_and_kwargs_local_scheduler():
    X = da.ones((12, 2), chunks=(4, 2))
    out = map_partitions(lambda b, scale, partition: b.sum() * scale + partition, X, scale=2.0,
                         with_index=True)
    assert sorted(dask.compute(*out)) == [16.0, 17.0, 18.0]


def test_tasks_get_aligned_blocks():
    """A block that arrived unaligned (a view into a received frame) reaches the kernel as an
    aligned copy with the same values; aligned blocks and other values pass as they are."""
    import scipy.sparse as sp

    from skdml.parallel._map import _run_group

    raw = np.zeros(8 * 12 + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float64).reshape(4, 3)
    unaligned[:] = np.arange(12.0).reshape(4, 3)
    assert not unaligned.flags.aligned
    aligned = np.ones((2, 2))
    csr = sp.csr_matrix(unaligned)
    raw2 = np.zeros(8 * csr.nnz + 1, dtype=np.uint8)
    csr.data = raw2[1:].view(np.float64)
    csr.data[:] = np.arange(1.0, csr.nnz + 1)
    seen = _run_group(lambda a, b, c, d: (a, b, c, d), [(unaligned, aligned, csr, None)], [0],
                      (), {}, None, False, True)
    assert seen[0].flags.aligned and seen[2].data.flags.aligned
    assert_array_equal(seen[0], np.arange(12.0).reshape(4, 3))
    assert_array_equal(seen[2].toarray(), csr.toarray())
    assert seen[1] is aligned and seen[3] is None


def test_map_partitions_rejects_unknown_data():
    with pytest.raises(TypeError, match="takes a Dask array"):
        map_partitions(lambda b: b, "not data")
    with pytest.raises(TypeError, match="block must be True or False; got 'no'"):
        map_partitions(lambda b: b, da.ones((4, 2), chunks=2), block="no")


def test_persist_partitions_checks_alignment_and_feature_chunks():
    X = da.ones((10, 4), chunks=(5, 2))
    with pytest.raises(ValueError, match="Only the row axis"):
        persist_partitions(X)
    with pytest.raises(ValueError, match="same row chunks"):
        persist_partitions(da.ones((10, 2), chunks=(5, 2)), da.ones(10, chunks=3))
    parts = persist_partitions(da.ones((10, 2), chunks=(5, 2)), None, da.ones(10, chunks=5))
    assert parts.blocks[0][1] is None and parts.n_samples == 10


def test_persist_partitions_balances_rows_over_workers(c):
    """Data that sit on one worker are spread so each worker holds its share of the rows; the
    blocks keep their values and order, and the arrays handed on are the balanced ones."""
    from distributed import futures_of, wait

    w0, w1 = sorted(c.nthreads())
    rng = np.random.default_rng(0)
    X_np, y_np = rng.standard_normal((80, 3)), np.arange(80.0)
    X = c.persist(da.from_array(X_np, chunks=(10, 3)), workers=[w0])
    y = c.persist(da.from_array(y_np, chunks=10), workers=[w0])
    wait([X, y])
    assert set().union(*c.who_has(futures_of(X)).values()) == {w0}
    parts = persist_partitions(X, y)
    assert sorted(parts.workers.count(w) for w in (w0, w1)) == [4, 4]
    for i, (xb, yb) in enumerate(parts.blocks):
        assert {c.who_has([xb])[xb.key][0], c.who_has([yb])[yb.key][0]} == {parts.workers[i]}
        assert_array_equal(xb.result(), X_np[i * 10:(i + 1) * 10])
        assert_array_equal(yb.result(), y_np[i * 10:(i + 1) * 10])
    assert_array_equal(parts.arrays[0].compute(), X_np)
    assert_array_equal((parts.arrays[1] * 2).compute(), 2 * y_np)
    # a balanced placement is left alone
    again = persist_partitions(parts.arrays[0])
    assert again.workers == parts.workers


def _label_counts(X, y, w):
    values, counts = np.unique(y, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def _merge(a, b):
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


@pytest.mark.parametrize("distributed", [True, False])
def test_persist_partitions_summary(request, distributed):
    """Summaries asked with the persist: one per partition (``None`` for the array left out),
    computed by tasks of their own name, read with aggregate or combined on the cluster."""
    client = request.getfixturevalue("c") if distributed else None
    rng = np.random.default_rng(0)
    y_np = rng.integers(0, 4, 95)
    X = da.from_array(rng.standard_normal((95, 2)), chunks=(20, 2))
    y = da.from_array(y_np, chunks=20)
    parts = persist_partitions(X, y, None, client=client, summarize=_label_counts,
                               name="test-labels")
    assert len(parts.summary) == parts.n_partitions == 5
    values, counts = np.unique(y_np, return_counts=True)
    expected = dict(zip(values.tolist(), counts.tolist()))
    on_cluster = tree_reduce(parts.summary, _merge, client=client)
    assert (on_cluster.result() if distributed else on_cluster.compute()) == expected
    assert aggregate(parts.summary, _merge, split_every=2, client=client) == expected
    if distributed:
        names = {key_split(k) for k in client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.tasks))}
        assert "skdml-test-labels" in names
    assert persist_partitions(X, client=client).summary is None
    parts.release()
    assert parts.summary is None
    with pytest.raises(TypeError, match="summarize must be a function"):
        persist_partitions(X, client=client, summarize="counts")


def test_kmeans_fit_on_data_held_by_one_worker(c):
    from skdml.cluster import KMeans

    w0 = sorted(c.nthreads())[0]
    rng = np.random.default_rng(1)
    X_np = np.concatenate([rng.normal(m, 0.3, (60, 2)) for m in (0, 4, 8)])
    X = c.persist(da.from_array(X_np, chunks=(30, 2)), workers=[w0])
    km = KMeans(3, random_state=0).fit(X)  # k-means|| builds graphs on the balanced arrays
    assert_allclose(np.sort(km.cluster_centers_[:, 0]), [0, 4, 8], atol=0.2)


def test_task_names_read_like_the_algorithm(c):
    X = da.ones((20, 2), chunks=(5, 2))
    parts = persist_partitions(X)
    out = map_partitions(lambda b: b.sum(0), parts, combine=add, name="kmeans-lloyd")
    red = tree_reduce(out, add, name="kmeans-reduce", split_every=2)
    rep = allreduce(out, name="sgd-allreduce", shard=True)
    keys = [f.key for f in out] + [red.key] + [f.key for f in rep.values()]
    names = {key_split(k) for k in keys}
    assert "skdml-kmeans-lloyd" in names
    assert all(n.startswith("skdml-") for n in names)
    assert {"skdml-kmeans-reduce", "skdml-sgd-allreduce-gather"} <= names | {key_split(red.key)}


def test_config_set_and_get():
    assert skdml.config.get("split_every") == 8
    with skdml.config.set(split_every=3, speculative=False):
        assert skdml.config.get("split_every") == 3
        assert skdml.config.get("speculative") is False
    assert skdml.config.get("speculative") is True
    with pytest.raises(KeyError, match="Unknown skdml setting"):
        skdml.config.set(not_a_setting=1)
