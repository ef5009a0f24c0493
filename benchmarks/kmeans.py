"""KMeans side by side on the same data: skdml, scikit-learn and dask-ml, against the floor.

Data: ``skdml.datasets.make_blobs``, 2,000,000 x 32 float64, 16 centers (``--quick``:
500,000 rows), in 8 partitions. In one process:

1. the hardware ceilings of this machine: memory bandwidth (two threads summing halves of a
   1 GiB array) and GEMM rate (4096 x 4096, float64 and float32, default threads). The floor of
   one Lloyd iteration is ``max(bytes of X / bandwidth, 4 n k d / GEMM rate)``;
2. seconds per Lloyd iteration, 20 forced iterations (no convergence test) from the same
   centers: skdml on Dask's threaded scheduler and on a 2-worker x 1-thread process
   LocalCluster (float64 and float32); dask-ml on the same cluster (``tol=0`` never stops it;
   timed as fits of 21 minus 1 iterations); scikit-learn (Lloyd, 2 OpenMP threads; it stops when
   labels do not change, so it is timed as fits of 46 minus 6 iterations on uniform data of the
   same shape, which does not converge);
3. a whole fit with default parameters (initialisation included) and its inertia: skdml
   (k-means||), scikit-learn (k-means++), dask-ml (k-means||).

The development machine is shared with other jobs, whose load comes and goes; so every
measurement is repeated in interleaved rounds (one of each implementation per round, the
cluster staying up throughout) and each implementation's best round is reported, with the load
average. Run: ``python benchmarks/kmeans.py [--quick] [--rounds N] [--no-dask-ml]
[--no-write]``; writes the ``kmeans`` section of RESULTS.md.
"""
import argparse
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait
from sklearn.cluster import KMeans as SKKMeans

import skdml
from skdml.cluster import KMeans
from skdml.cluster._kmeans import _kernel_layout, _Driver
from skdml.datasets import make_blobs
from skdml.parallel import persist_partitions

try:
    from _results import machine_line, table, write_section
except ImportError:  # run as a module
    from benchmarks._results import machine_line, table, write_section

K = 16
D = 32
N_ITER = 20


def settle(seconds=0.5):
    """Let the threads of the previous contender go idle: OpenMP (scikit-learn) and OpenBLAS
    threads spin for a while after their work, and measured up to 2x slowdowns of whatever ran
    next in the same process."""
    time.sleep(seconds)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# -- hardware ceilings ---------------------------------------------------------------------------
def memory_bandwidth():
    a = np.ones(2**30 // 8)
    halves = np.array_split(a, 2)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(np.sum, halves))
        return a.nbytes / min(timed(lambda: list(pool.map(np.sum, halves)))[0]
                              for _ in range(5))


def gemm_rate(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4096, 4096)).astype(dtype)
    b = rng.standard_normal((4096, 4096)).astype(dtype)
    a @ b
    return 2 * 4096**3 / min(timed(lambda: a @ b)[0] for _ in range(3))


# -- the implementations -------------------------------------------------------------------------
class SkdmlIterations:
    """Forced Lloyd iterations of skdml's own driver on persisted partitions; on a cluster
    ``resident`` chooses the worker-resident loop (the default) or the loop pass by pass."""

    def __init__(self, X, dtype, resident=True):
        self.resident = resident
        X = X.astype(dtype)
        self.parts = persist_partitions(
            X.map_blocks(_kernel_layout, dtype=X.dtype, meta=X._meta), None)
        self.driver = _Driver(self.parts, n_clusters=K, dtype=dtype, entropy=0, verbose=0)
        self.c0 = self.driver.init_kmeanspp(1)
        self.driver.lloyd(self.c0, max_iter=2, tol=0, force_iter=True)  # warm up

    def __call__(self):
        with skdml.config.set(resident=self.resident):
            return timed(lambda: self.driver.lloyd(self.c0, max_iter=N_ITER, tol=0,
                                                   force_iter=True))[0] / N_ITER


class SklearnIterations:
    """scikit-learn's Lloyd: a fit of 46 iterations minus the faster of two fits of 6, on
    non-converging data of the same shape; the difference is 40 iterations."""

    def __init__(self, n):
        self.U = np.random.default_rng(1).random((n, D))
        self.init = self.U[:K].copy()
        assert self.fit(46).n_iter_ == 46

    def fit(self, max_iter):
        return SKKMeans(K, init=self.init, n_init=1, max_iter=max_iter, tol=0,
                        algorithm="lloyd").fit(self.U)

    def __call__(self):
        short = min(timed(lambda: self.fit(6))[0] for _ in range(2))
        return (timed(lambda: self.fit(46))[0] - short) / 40


class DaskmlIterations:
    """dask-ml's Lloyd from fixed centers (``tol=0``): fits of 21 minus 1 iterations."""

    def __init__(self, Xp, init):
        from dask_ml.cluster import KMeans as DMKMeans

        self.fit = lambda max_iter: DMKMeans(K, init=init, max_iter=max_iter, tol=0).fit(Xp)
        self.fit(1)

    def __call__(self):
        return (timed(lambda: self.fit(21))[0] - timed(lambda: self.fit(1))[0]) / 20


def skdml_fit(X):
    t, km = timed(lambda: KMeans(K, random_state=0).fit(X))
    return t, km.inertia_, km.n_iter_


def sklearn_fit(X):
    t, km = timed(lambda: SKKMeans(K, random_state=0).fit(X))
    return t, km.inertia_, km.n_iter_


def daskml_fit(Xp):
    from dask_ml.cluster import KMeans as DMKMeans

    t, km = timed(lambda: DMKMeans(K, random_state=0).fit(Xp))
    return t, float(km.inertia_), int(km.n_iter_)


# -------------------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="500,000 rows instead of 2,000,000")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-dask-ml", action="store_true", help="skip dask-ml")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    n = 500_000 if args.quick else 2_000_000
    chunks = n // 8
    warnings.simplefilter("ignore")  # dask-ml's deprecation warnings
    loads = [os.getloadavg()[0]]

    X, _ = make_blobs(n, D, centers=K, chunks=chunks, random_state=0)
    X_np = X.compute(scheduler="threads")
    Xt = da.from_array(X_np, chunks=(chunks, D))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster, set_as_default=False)  # used only inside client.as_current()
    try:
        client.run(lambda: __import__("skdml.cluster"))
        with client.as_current():
            Xp = X.persist()
            wait(Xp)
            Xp32 = Xp.astype(np.float32).persist()
            wait(Xp32)
            on_cluster = {
                "skdml cluster f64": SkdmlIterations(Xp, np.float64),
                "skdml cluster f32": SkdmlIterations(Xp, np.float32),
                "skdml cluster f64 passes": SkdmlIterations(Xp, np.float64, resident=False),
                "skdml cluster f32 passes": SkdmlIterations(Xp, np.float32, resident=False)}
            if not args.no_dask_ml:
                on_cluster["dask-ml cluster"] = DaskmlIterations(Xp, X_np[:K].copy())
        local = {"skdml threads f64": SkdmlIterations(Xt, np.float64),
                 "skdml threads f32": SkdmlIterations(Xt, np.float32),
                 "sklearn": SklearnIterations(n)}
        ceilings = {"bw": [], np.float64: [], np.float32: []}
        iters = {name: [] for name in [*local, *on_cluster]}
        fits = {}

        def record(name, value):
            fits.setdefault(name, []).append(value)
            print(f"  {name}: {value}", flush=True)

        for r in range(args.rounds):
            print(f"round {r} (load {os.getloadavg()[0]:.1f})", flush=True)
            # scikit-learn first and twice: its OpenMP pass measured up to 2x slower right
            # after a threaded skdml run or a 2-thread BLAS call in the same process
            for _ in range(2):
                settle()
                iters["sklearn"].append(local["sklearn"]())
                print(f"  sklearn: {iters['sklearn'][-1]:.4f} s/iteration", flush=True)
            settle()
            record("sklearn", sklearn_fit(X_np))
            settle()
            ceilings["bw"].append(memory_bandwidth())
            for dtype in (np.float64, np.float32):
                ceilings[dtype].append(gemm_rate(dtype))
            for name, run in local.items():
                if name == "sklearn":
                    continue
                settle()
                iters[name].append(run())
                print(f"  {name}: {iters[name][-1]:.4f} s/iteration", flush=True)
            with client.as_current():
                for name, run in on_cluster.items():
                    settle()
                    iters[name].append(run())
                    print(f"  {name}: {iters[name][-1]:.4f} s/iteration", flush=True)
                record("skdml cluster", skdml_fit(Xp))
                record("skdml cluster f32", skdml_fit(Xp32))
                if not args.no_dask_ml and r < 2:  # about 20 s each
                    record("dask-ml cluster", daskml_fit(Xp))
            record("skdml threads", skdml_fit(Xt))
            loads.append(os.getloadavg()[0])
    finally:
        client.close()
        cluster.close()

    bw = max(ceilings["bw"])
    gemm = {dt: max(ceilings[dt]) for dt in (np.float64, np.float32)}
    floor = {dt: max(n * D * np.dtype(dt).itemsize / bw, 4 * n * K * D / gemm[dt])
             for dt in (np.float64, np.float32)}
    best = {name: min(v) for name, v in iters.items()}
    sk = best["sklearn"]
    labels = [("skdml, 2-worker LocalCluster", "skdml cluster f64", np.float64),
              ("skdml, threaded scheduler", "skdml threads f64", np.float64),
              ("skdml, 2-worker LocalCluster, float32", "skdml cluster f32", np.float32),
              ("skdml, threaded scheduler, float32", "skdml threads f32", np.float32),
              ("skdml, 2-worker LocalCluster, pass by pass (resident=False)",
               "skdml cluster f64 passes", np.float64),
              ("skdml, 2-worker LocalCluster, float32, pass by pass",
               "skdml cluster f32 passes", np.float32),
              ("scikit-learn (Lloyd, 2 threads)", "sklearn", np.float64),
              ("dask-ml, 2-worker LocalCluster", "dask-ml cluster", np.float64)]
    rows = [[label, f"{best[key]:.3f}", f"{sorted(iters[key])[len(iters[key]) // 2]:.3f}",
             f"{best[key] / floor[dt]:.2f}x", f"{best[key] / sk:.2f}x"]
            for label, key, dt in labels if key in best]
    fit_best = {name: min(v, key=lambda f: f[0]) for name, v in fits.items()}
    base = min(f[1] for name, f in fit_best.items() if "f32" not in name)
    # "|" would end a Markdown table cell: escape the name of k-means||
    fit_labels = [("skdml, 2-worker LocalCluster (k-means\\|\\|)", "skdml cluster"),
                  ("skdml, 2-worker LocalCluster, float32", "skdml cluster f32"),
                  ("skdml, threaded scheduler (k-means\\|\\|)", "skdml threads"),
                  ("scikit-learn (k-means++, 2 threads)", "sklearn"),
                  ("dask-ml, 2-worker LocalCluster (k-means\\|\\|)", "dask-ml cluster")]
    t_ref = fit_best["skdml cluster"][0]
    fit_rows = [[label, f"{fit_best[key][0]:.2f}", f"{fit_best[key][1]:.6g}",
                 f"{fit_best[key][1] / base - 1:+.1e}", fit_best[key][2],
                 f"{fit_best[key][0] / t_ref:.2f}x"]
                for label, key in fit_labels if key in fit_best]
    c64, c32 = best["skdml cluster f64"], best["skdml cluster f32"]
    t64, t32 = best["skdml threads f64"], best["skdml threads f32"]
    ratios = [
        f"per Lloyd iteration, 2-worker cluster: {c64 / floor[np.float64]:.2f}x the float64 "
        f"floor, {c64 / sk:.2f}x scikit-learn; threaded scheduler: "
        f"{t64 / floor[np.float64]:.2f}x the floor, {t64 / sk:.2f}x scikit-learn",
        f"float64 / float32 per iteration: {c64 / c32:.2f}x (cluster), {t64 / t32:.2f}x "
        "(threaded)",
    ]
    if "skdml cluster f64 passes" in best:
        p64, p32 = best["skdml cluster f64 passes"], best["skdml cluster f32 passes"]
        ratios.append(f"pass by pass (resident=False) on the cluster: {p64 * 1e3:.1f} ms float64,"
                      f" {p32 * 1e3:.1f} ms float32 ({p64 / p32:.2f}x); the resident loop is "
                      f"{p64 / c64:.2f}x (float64) and {p32 / c32:.2f}x (float32) faster")
    if "dask-ml cluster" in fit_best:
        ratios.append(f"whole fit: dask-ml / skdml (cluster) = "
                      f"{fit_best['dask-ml cluster'][0] / t_ref:.1f}x, to the same inertia")
    md = [
        "## KMeans (benchmarks/kmeans.py)",
        "",
        f"Machine: {machine_line()}. Shared machine: load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the run (other jobs); {args.rounds} "
        "interleaved rounds, each implementation's best round (median in brackets below).",
        f"Data: make_blobs {n:,} x {D} float64, {K} centers, 8 partitions"
        f"{' (--quick)' if args.quick else ''}.",
        "",
        f"Measured here (best round): memory bandwidth {bw / 1e9:.1f} GB/s (2 threads), GEMM "
        f"{gemm[np.float64] / 1e9:.0f} GFLOP/s float64 and {gemm[np.float32] / 1e9:.0f} "
        f"float32 (4096^2). Floor of one Lloyd iteration = max(bytes / bandwidth, 4 n k d / "
        f"GEMM rate) = {floor[np.float64] * 1e3:.1f} ms float64, "
        f"{floor[np.float32] * 1e3:.1f} ms float32.",
        "",
        "### Seconds per Lloyd iteration (20 forced iterations)",
        "",
        table(["implementation", "s / iteration", "(median round)", "vs floor",
               "vs scikit-learn"], rows),
        "",
        "### Whole fit, default parameters (initialisation included), best round",
        "",
        table(["implementation", "seconds", "inertia", "vs best float64 inertia", "iterations",
               "time vs skdml cluster"], fit_rows),
        "",
        "Ratios: " + "; ".join(ratios) + ".",
    ]
    markdown = "\n".join(md)
    print(markdown)
    if not args.no_write:
        write_section("kmeans", markdown)


if __name__ == "__main__":
    main()
