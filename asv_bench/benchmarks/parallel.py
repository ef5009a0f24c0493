"""skdml.parallel on a 2-worker process cluster: driver-loop overhead, allreduce, speculation.

The side-by-side comparison with the naive alternatives (futures tree, client gather + scatter)
lives in ``benchmarks/parallel_overhead.py``; these classes track skdml's own figures over time.
"""
from __future__ import annotations

import operator
import time

import numpy as np

from . import ClusterBenchmark


# Kernels from the standard library or closures: distributed pickles module-level functions by
# reference, and the worker processes cannot import this benchmark package.
_add = operator.add
_colsum = operator.methodcaller("sum", axis=0)


class DriverLoop(ClusterBenchmark):
    """One driver iteration: map over 8 persisted partitions, tree-reduce, result to client."""

    params = [[1_000, 100_000]]
    param_names = ["rows_per_partition"]

    def setup(self, rows):
        super().setup(rows)
        import dask.array as da

        from skdml.parallel import persist_partitions

        X = da.random.RandomState(0).random_sample((8 * rows, 16), chunks=(rows, 16))
        self.parts = persist_partitions(X)
        self.step()  # warm the workers' imports and the scheduler's task-duration estimates

    def step(self):
        from skdml.parallel import aggregate, map_partitions

        return aggregate(map_partitions(_colsum, self.parts, combine=_add, name="asv-loop"),
                         _add)

    def time_iteration(self, rows):
        self.step()

    def track_ms_per_iteration_of_20(self, rows):
        start = time.perf_counter()
        for _ in range(20):
            self.step()
        return (time.perf_counter() - start) / 20 * 1e3

    track_ms_per_iteration_of_20.unit = "ms"


class Allreduce(ClusterBenchmark):
    """allreduce of P float64 vectors, sharded and tree + broadcast."""

    params = [[2, 8], [10_000, 1_000_000], [True, False]]
    param_names = ["P", "size", "shard"]

    def setup(self, p, size, shard):
        super().setup(p, size, shard)
        from distributed import wait

        workers = list(self.client.nthreads())
        self.vals = [self.client.submit(np.full, size, float(i),
                                        workers=[workers[i % len(workers)]], pure=False)
                     for i in range(p)]
        wait(self.vals)
        self.run(shard)

    def run(self, shard):
        from distributed import wait

        from skdml.parallel import allreduce

        rep = allreduce(self.vals, op="sum", shard=shard)
        wait(list(rep.values()))

    def time_allreduce(self, p, size, shard):
        self.run(shard)


def _make_straggler():
    def straggle(block, slow, partition):
        from distributed import get_worker

        time.sleep(0.1)
        if partition == 0 and get_worker().address == slow:
            time.sleep(2.0)
        return block.sum(axis=0)

    return straggle


class Speculation(ClusterBenchmark):
    """16 tasks of 0.1 s on 4 workers, one delayed 2 s: stage time with speculation on/off."""

    n_workers = 4
    params = [[True, False]]
    param_names = ["speculative"]
    timeout = 120.0

    def setup(self, speculative):
        super().setup(speculative)
        import dask.array as da

        from skdml.parallel import persist_partitions

        self.parts = persist_partitions(da.ones((1600, 4), chunks=(100, 4)))

    def time_stage(self, speculative):
        import skdml
        from skdml.parallel import aggregate, map_partitions

        with skdml.config.set(speculation_min_duration=0.05):
            res = map_partitions(_make_straggler(), self.parts, self.parts.workers[0], combine=_add,
                                 group_by="partition", with_index=True, speculative=speculative,
                                 name="asv-straggler")
            aggregate(res, _add)
