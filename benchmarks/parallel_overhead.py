"""Engine costs, side by side on one 2-worker process LocalCluster.

1. Driver-loop overhead: map a kernel over 8 persisted partitions, reduce, bring the small result
   to the client. skdml (one task per worker thread + aggregate) against a naive futures binary
   tree + gather, for tiny partitions (pure overhead) and large ones (kernel-bound).
2. allreduce: worker-aware sharded exchange vs every worker folding all partials vs
   tree-reduce + broadcast vs client gather + scatter, P = 2..16 values of 1e4..1e7 float64:
   seconds and bytes moved per worker.
3. Speculation on/off with one straggling task.

Run: ``python benchmarks/parallel_overhead.py [--quick]``; writes a section of RESULTS.md.
"""
import argparse
import os
import statistics
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, get_worker, wait

import skdml
import skdml.parallel._reduce as _reduce
from skdml.parallel import aggregate, allreduce, map_partitions, persist_partitions, tree_reduce

try:
    from _results import machine_line, table, write_section
except ImportError:  # run as a module
    from benchmarks._results import machine_line, table, write_section


def add(a, b):
    return a + b


def colsum(b):
    return b.sum(axis=0)


def heavy(b):
    # a GEMM-bound kernel: ~ 2 n d^2 flops
    return b.T @ b


def naive_binary_tree(client, futures, fn):
    mapped = [client.submit(fn, f, pure=False) for f in futures]
    while len(mapped) > 1:
        mapped = [client.submit(add, mapped[i], mapped[i + 1], pure=False)
                  if i + 1 < len(mapped) else mapped[i] for i in range(0, len(mapped), 2)]
    return mapped[0].result()


def timeit(fn, repeat):
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_driver_loop(client, quick):
    rows = []
    for label, shape, kernel in [("tiny (8 x 1000 x 8)", (8000, 8), colsum),
                                 ("large (8 x 250k x 64, X^T X)", (2_000_000, 64), heavy)]:
        X = da.random.RandomState(0).random_sample(shape, chunks=(shape[0] // 8, shape[1]))
        parts = persist_partitions(X)
        futures = [b[0] for b in parts.blocks]
        n_iter = 10 if quick else 30
        # the kernel's time on a worker (same process, same BLAS threads as the real runs)
        t_kernel = client.submit(lambda b: timeit(lambda: kernel(b), 5), parts.blocks[0][0],
                                 workers=[parts.workers[0]], pure=False).result()
        # kernel time of one iteration if perfectly spread over the cluster's threads
        floor = t_kernel * parts.n_partitions / sum(parts.nthreads.values())
        results = {}
        for spec in (False, True):
            with skdml.config.set(speculative=spec):
                def step():
                    return aggregate(map_partitions(kernel, parts, combine=add,
                                                    name="bench-loop"), add)
                results[spec] = timeit(lambda: [step() for _ in range(n_iter)], 3) / n_iter
        t_naive = timeit(lambda: [naive_binary_tree(client, futures, kernel)
                                  for _ in range(n_iter)], 3) / n_iter
        rows.append([label, f"{floor * 1e3:.1f}", f"{results[False] * 1e3:.1f}",
                     f"{results[True] * 1e3:.1f}", f"{t_naive * 1e3:.1f}",
                     f"{t_naive / results[False]:.2f}x",
                     f"{(results[False] - floor) * 1e3:.1f}"])
        parts.release()
    return table(["partitions", "kernel floor ms", "skdml ms/iter", "skdml + speculation ms/iter",
                  "naive futures tree ms/iter", "naive / skdml", "skdml overhead ms"], rows)


def _reset_logs(dask_worker):
    dask_worker.transfer_incoming_log.clear()
    dask_worker.transfer_outgoing_log.clear()


def _bytes_moved(dask_worker):
    return (sum(e["total"] for e in dask_worker.transfer_incoming_log),
            sum(e["total"] for e in dask_worker.transfer_outgoing_log))


def bench_allreduce(client, quick, ps=None):
    workers = list(client.nthreads())
    rows = []
    sizes = [10_000, 100_000, 1_000_000] + ([] if quick else [10_000_000])
    for p in ps or ([2, 8] if quick else [2, 4, 8, 16]):
        for size in sizes:
            expected = float(sum(range(p)))
            out = {}
            for method in METHODS:
                def run(vals):
                    if method == "client gather+scatter":
                        total = sum(client.gather(vals))
                        copies = client.scatter([total] * len(workers), workers=workers,
                                                hash=False)
                        wait(copies)
                        return copies
                    saved = _reduce.FOLD_MAX_WORKERS, _reduce.FOLD_MAX_BYTES
                    # force the path: fold at any size, or tree + broadcast on any number of
                    # workers
                    if method == "fold":
                        _reduce.FOLD_MAX_BYTES = float("inf")
                    if method == "tree+broadcast":
                        _reduce.FOLD_MAX_WORKERS, _reduce.FOLD_MAX_BYTES = 1, -1
                    try:
                        rep = allreduce(vals, op="sum", shard=method == "sharded",
                                        nbytes=size * 8)
                    finally:
                        _reduce.FOLD_MAX_WORKERS, _reduce.FOLD_MAX_BYTES = saved
                    wait(list(rep.values()))
                    return list(rep.values())

                times, moved = [], []
                for rep in range(2 if size >= 1e7 else 4):
                    # fresh partials each time, so no replica left by an earlier run helps
                    vals = [client.submit(np.full, size, float(i),
                                          workers=[workers[i % len(workers)]], pure=False)
                            for i in range(p)]
                    wait(vals)
                    client.run(_reset_logs)
                    t = time.perf_counter()
                    copies = run(vals)
                    times.append(time.perf_counter() - t)
                    moved.append(max(i + o for i, o in client.run(_bytes_moved).values()) / 1e6)
                    assert float(copies[0].result()[0]) == expected  # after counting bytes
                    del copies, vals
                out[method] = (statistics.median(times[1:]), statistics.median(moved))
            mb = size * 8 / 1e6
            rows.append([len(workers), p, f"{mb:g}"] + [f"{out[m][0] * 1e3:.1f} / {out[m][1]:.1f}"
                                                          for m in METHODS])
    return table(["W", "P", "value MB"] + [f"{m} ms / MB per worker" for m in METHODS], rows)


#: allreduce methods compared: skdml's three paths and the client round trip.
METHODS = ("sharded", "fold", "tree+broadcast", "client gather+scatter")


def straggler(b, slow, partition):
    time.sleep(0.2)
    if partition == 0 and get_worker().name == slow:
        time.sleep(3.0)
    return b.sum(axis=0)


def bench_speculation():
    rows = []
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster):
        X = da.ones((1600, 4), chunks=(100, 4))
        parts = persist_partitions(X)
        slow = next(w.name for w in cluster.workers.values() if w.address == parts.workers[0])
        for label, slow_name, spec in [("no straggler", None, False),
                                       ("straggler, speculation off", slow, False),
                                       ("straggler, speculation on", slow, True)]:
            with skdml.config.set(speculation_min_duration=0.05):
                t = time.perf_counter()
                res = map_partitions(straggler, parts, slow_name, combine=add, group_by="partition",
                                     with_index=True, speculative=spec, name="bench-straggler")
                total = aggregate(res, add)
                elapsed = time.perf_counter() - t
            assert np.allclose(total, 1600)
            rows.append([label, f"{elapsed:.2f}", res.n_backups])
            time.sleep(3.2)  # let an abandoned straggler finish before the next run
    return table(["16 tasks x 0.2 s on 4 workers", "stage seconds", "backups"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="8GiB") as cluster, Client(cluster) as client:
        loop = bench_driver_loop(client, args.quick)
        print(loop)
        ar = bench_allreduce(client, args.quick)
        print(ar)
    # With more workers sharding saves bytes per worker: measure where it starts to pay.
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="4GiB") as cluster, Client(cluster) as client:
        ar4 = bench_allreduce(client, args.quick, ps=[4] if args.quick else [4, 8])
        print(ar4)
        ar = ar + "\n" + "\n".join(ar4.splitlines()[2:])
    spec = bench_speculation()
    print(spec)
    write_section("parallel", "\n\n".join([
        "## Engine (benchmarks/parallel_overhead.py)",
        f"Machine: {machine_line()}; load average {os.getloadavg()[0]:.1f} at the end (shared "
        "machine); 2-worker x 1-thread process LocalCluster unless stated.",
        "### Driver loop (map over 8 persisted partitions, reduce, result to the client)",
        loop,
        "### allreduce (time / bytes moved by the busiest worker)",
        ar,
        "### Speculative backup tasks (in-process 4-worker cluster, one 3 s straggler)",
        spec,
    ]))


if __name__ == "__main__":
    main()
