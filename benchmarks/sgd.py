"""SGDClassifier on a 2-worker process LocalCluster, side by side with scikit-learn and dask-ml.

Data: ``skdml.datasets.make_classification``, n_train x 100 (20 informative) plus n_test test
rows, binary and 10 classes; loss="log_loss", 5 epochs. Full size: 1,000,000 + 200,000 rows
(the issue's); ``--quick``: 100,000 + 20,000.

Contenders, in one process on one cluster (2 workers x 1 thread, processes):

* skdml ``SGDClassifier`` on the persisted Dask arrays (4 training partitions, 2 per worker);
* scikit-learn ``SGDClassifier`` on the same data as NumPy arrays on the client (1 thread);
* dask-ml ``Incremental(SGDClassifier)`` (``partial_fit`` block after block), 5 passes;
* dask-ml ``LogisticRegression`` (L-BFGS, to convergence): the converged accuracy.

Reported: fit seconds and test accuracy; skdml's time to reach scikit-learn's 5-epoch accuracy
(within 0.5 point) and the converged accuracy (within 0.3 point, averaged SGD); seconds per
epoch against the memory-bandwidth floor (two passes over X at the measured copy bandwidth of
the two workers); accuracy against wall time for several ``sync_every``.

Run: ``python benchmarks/sgd.py [--quick] [--no-write]``; writes the "sgd" section of
RESULTS.md.
"""
import argparse
import os
import statistics
import time

import numpy as np
from distributed import Client, LocalCluster, futures_of, wait

try:
    from _results import machine_line, table, write_section
except ImportError:  # run as a module
    from benchmarks._results import machine_line, table, write_section

EPOCHS = 5


def _copy_bandwidth(nbytes=400 * 2**20, repeat=3):
    """GB/s of numpy copy (bytes read + written) on this worker."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best / 1e9


def measure_bandwidth(client):
    """Aggregate copy bandwidth of all workers copying at once (GB/s)."""
    return sum(client.run(_copy_bandwidth).values())


def make_data(client, n_train, n_test, n_classes, chunk):
    """Persisted train/test Dask arrays, training partitions pinned round robin to the workers
    (so both do the same work), plus NumPy copies on the client."""
    import dask.array as da

    from skdml.datasets import make_classification

    X, y = make_classification(n_samples=n_train + n_test, n_features=100, n_informative=20,
                               n_classes=n_classes, chunks=chunk, random_state=0)
    workers = sorted(client.nthreads())
    xs, ys = [], []
    for i in range(X.numblocks[0]):
        xb, yb = client.persist([X.blocks[i], y.blocks[i]], workers=[workers[i % len(workers)]])
        xs.append(xb)
        ys.append(yb)
    X, y = da.concatenate(xs), da.concatenate(ys)
    wait([X, y])
    n_blocks = n_train // chunk
    Xtr, ytr = X[:n_train], y[:n_train]
    Xte, yte = X[n_train:], y[n_train:]
    assert Xtr.numblocks[0] == n_blocks
    placement = client.who_has([f for xb in xs[:n_blocks] for f in futures_of(xb)])
    host = tuple(a.compute() for a in (Xtr, ytr, Xte, yte))
    return (Xtr, ytr, Xte, yte), host, placement


SEEDS = (0, 1, 2)


def _fit_seeds(estimator, data, epochs, seeds, **kw):
    """(median fit seconds, mean test accuracy over seeds, last model) of an SGDClassifier."""
    Xtr, ytr, Xte, yte = data
    times, accs = [], []
    for seed in seeds:
        clf = estimator(loss="log_loss", max_iter=epochs, tol=None, random_state=seed, **kw)
        t = time.perf_counter()
        clf.fit(Xtr, ytr)
        times.append(time.perf_counter() - t)
        accs.append(clf.score(Xte, yte))
    return statistics.median(times), float(np.mean(accs)), clf


def fit_skdml(data, epochs, seeds=SEEDS, **kw):
    """skdml on the Dask arrays: (median seconds, mean accuracy, last model)."""
    from skdml.linear_model import SGDClassifier

    return _fit_seeds(SGDClassifier, data, epochs, seeds, **kw)


#: Passes over the seeds for the per-epoch figures (each pass visits every configuration).
REPEATS = 2


def skdml_epochs(data, configs, seeds=SEEDS, repeats=REPEATS):
    """skdml fits of 1 and of EPOCHS epochs, paired per seed (each pair back to back, so both
    see the same machine load), for every configuration in ``configs`` (keyword dicts).

    The configurations are interleaved, seed by seed, and the seeds visited ``repeats`` times,
    so a burst of load on this shared machine hits every configuration alike. Returns, per
    configuration, (median EPOCHS-epoch seconds, mean accuracy over the seeds, median of the
    per-pair differences / (EPOCHS - 1): the seconds of an epoch)."""
    from skdml.linear_model import SGDClassifier

    full = [[] for _ in configs]
    per_epoch = [[] for _ in configs]
    accs = [{} for _ in configs]
    for _ in range(repeats):
        for seed in seeds:
            for i, kw in enumerate(configs):
                t1 = _fit_seeds(SGDClassifier, data, 1, (seed,), **kw)[0]
                t5, acc, _ = _fit_seeds(SGDClassifier, data, EPOCHS, (seed,), **kw)
                full[i].append(t5)
                accs[i][seed] = acc  # the same every repeat (a fit is deterministic)
                per_epoch[i].append((t5 - t1) / (EPOCHS - 1))
    return [(statistics.median(f), float(np.mean(list(a.values()))), statistics.median(p))
            for f, a, p in zip(full, accs, per_epoch)]


def resident_pairs(data, seeds=SEEDS, repeats=REPEATS):
    """{True: median seconds, False: ...} of EPOCHS-epoch fits with the epochs as a resident
    loop (the default) and round by round (``resident=False``), back to back per seed."""
    import skdml

    times = {True: [], False: []}
    for _ in range(repeats):
        for seed in seeds:
            for resident in (True, False):
                with skdml.config.set(resident=resident):
                    times[resident].append(fit_skdml(data, EPOCHS, seeds=(seed,))[0])
    return {k: statistics.median(v) for k, v in times.items()}


def fit_sklearn(host, epochs, seeds=SEEDS, **kw):
    """scikit-learn on the NumPy copies: (median seconds, mean accuracy)."""
    from sklearn.linear_model import SGDClassifier

    return _fit_seeds(SGDClassifier, host, epochs, seeds, **kw)[:2]


def fit_incremental(data, epochs, classes, seeds=SEEDS):
    """dask-ml ``Incremental(SGDClassifier)``, ``epochs`` passes of ``partial_fit`` over the
    blocks, once per seed (like skdml's fits): (median seconds, mean test accuracy)."""
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier

    Xtr, ytr, Xte, yte = data
    y_test = yte.compute()
    times, accs = [], []
    for seed in seeds:
        inc = Incremental(SGDClassifier(loss="log_loss", tol=None, random_state=seed),
                          random_state=seed)
        t = time.perf_counter()
        inc.fit(Xtr, ytr, classes=classes)
        for _ in range(epochs - 1):
            inc.partial_fit(Xtr, ytr, classes=classes)
        times.append(time.perf_counter() - t)
        accs.append(float(np.mean(inc.predict(Xte).compute() == y_test)))
    return statistics.median(times), float(np.mean(accs))


def fit_dask_ml_logistic(data):
    from dask_ml.linear_model import LogisticRegression

    Xtr, ytr, Xte, yte = data
    lr = LogisticRegression(solver="lbfgs", max_iter=100)
    t = time.perf_counter()
    lr.fit(Xtr, ytr)
    seconds = time.perf_counter() - t
    acc = float(np.mean(lr.predict(Xte).compute() == yte.compute()))
    return seconds, acc


def time_to_accuracy(data, target, max_epochs=EPOCHS, **kw):
    """(seconds, epochs, accuracy) of the first skdml fit of 1, 2, ... epochs whose mean
    accuracy over the seeds reaches target (seconds: the median fit)."""
    last = None
    for e in range(1, max_epochs + 1):
        seconds, acc, _ = fit_skdml(data, e, **kw)
        last = (seconds, e, acc)
        if acc >= target:
            return last
    return last + ("not reached",)


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def binary_section(client, n_train, n_test, chunk, bandwidth):
    data, host, placement = make_data(client, n_train, n_test, 2, chunk)
    per_worker = {}
    for ws in placement.values():
        for w in ws:
            per_worker[w] = per_worker.get(w, 0) + 1
    nbytes = data[0].nbytes
    # warm the workers (imports, first allocations, and the compiled kernels of every
    # configuration timed below: Numba compiles a kernel for each new argument type the
    # first time it meets it, in every worker process, unless its disk cache has it)
    for kw in ({}, {"shuffle": False}, {"shuffle": True}, {"average": True},
               {"shuffle": False, "average": True}):
        fit_skdml(data, 1, seeds=(0,), **kw)

    sk_s, sk_acc = fit_sklearn(host, EPOCHS)
    (sd_s, sd_acc, per_epoch), (ns_s, ns_acc, ns_epoch), (bs_s, bs_acc, bs_epoch) = \
        skdml_epochs(data, [{}, {"shuffle": False}, {"shuffle": True}])
    pairs = resident_pairs(data)
    inc_s, inc_acc = fit_incremental(data, EPOCHS, classes=np.array([0, 1]))
    lr_s, lr_acc = fit_dask_ml_logistic(data)
    eq = time_to_accuracy(data, sk_acc - 0.005)
    eq_inc = time_to_accuracy(data, inc_acc - 0.005)
    conv = time_to_accuracy(data, lr_acc - 0.003, max_epochs=10, average=True)
    floor = 2 * nbytes / (bandwidth * 1e9)

    rows = [
        ["skdml SGDClassifier (2 workers; shuffle='batches', the default)", fmt(sd_s),
         fmt(per_epoch, 3), fmt(sd_acc, 4), "1.00x"],
        ["skdml SGDClassifier, shuffle=True (every row)", fmt(bs_s), fmt(bs_epoch, 3),
         fmt(bs_acc, 4), f"{bs_s / sd_s:.2f}x"],
        ["skdml SGDClassifier, shuffle=False", fmt(ns_s), fmt(ns_epoch, 3), fmt(ns_acc, 4),
         f"{ns_s / sd_s:.2f}x"],
        ["skdml SGDClassifier, epochs round by round (resident=False; paired: resident "
         f"{fmt(pairs[True])} s)", fmt(pairs[False]), "-", fmt(sd_acc, 4),
         f"{pairs[False] / sd_s:.2f}x"],
        ["scikit-learn SGDClassifier", fmt(sk_s), fmt(sk_s / EPOCHS, 3), fmt(sk_acc, 4),
         f"{sk_s / sd_s:.2f}x"],
        ["dask-ml Incremental(SGDClassifier)", fmt(inc_s), fmt(inc_s / EPOCHS, 3),
         fmt(inc_acc, 4), f"{inc_s / sd_s:.2f}x"],
        ["dask-ml LogisticRegression (L-BFGS, converged)", fmt(lr_s), "-", fmt(lr_acc, 4),
         f"{lr_s / sd_s:.2f}x"],
    ]
    out = [f"### Binary, {n_train:,} x 100 (+{n_test:,} test rows), log_loss, {EPOCHS} epochs",
           "",
           f"Training partitions per worker: {sorted(per_worker.values())}; X_train "
           f"{nbytes / 1e9:.2f} GB. Fit seconds are medians and test accuracies means over "
           f"random_state {list(SEEDS)} (one SGD run's accuracy moves by up to 2 points with the "
           "seed), dask-ml's Incremental's likewise; its L-BFGS is a single run. skdml's "
           "seconds per epoch: for each seed, "
           f"{REPEATS} times, a 1-epoch and a {EPOCHS}-epoch fit back to back (the three shuffle "
           "settings interleaved, seed by seed), the median of the "
           f"{REPEATS * len(SEEDS)} (difference / {EPOCHS - 1}); skdml's fit seconds are the "
           f"median of those {REPEATS * len(SEEDS)} {EPOCHS}-epoch fits.",
           "",
           table(["method", "fit s", "s / epoch", "test accuracy", "time / skdml time"], rows)]
    eq_note = "" if len(eq) == 3 else " (not reached)"
    conv_note = "" if len(conv) == 3 else " (not reached in 10 epochs)"
    targets = [
        ["as accurate as scikit-learn (>= {:.4f})".format(sk_acc - 0.005),
         f"{fmt(eq[0])} s, {eq[1]} epoch(s), {fmt(eq[2], 4)}{eq_note}",
         f"scikit-learn {fmt(sk_s)} s", f"{sk_s / eq[0]:.1f}x (target >= 3x)"],
        ["vs dask-ml Incremental, same epochs",
         f"{fmt(sd_s)} s", f"Incremental {fmt(inc_s)} s",
         f"{inc_s / sd_s:.1f}x (target >= 10x)"],
        ["vs dask-ml Incremental, same epochs, shuffle=True",
         f"{fmt(bs_s)} s", f"Incremental {fmt(inc_s)} s",
         f"{inc_s / bs_s:.1f}x (target >= 10x)"],
        ["as accurate as dask-ml Incremental (>= {:.4f})".format(inc_acc - 0.005),
         f"{fmt(eq_inc[0])} s, {eq_inc[1]} epoch(s), {fmt(eq_inc[2], 4)}",
         f"Incremental {fmt(inc_s)} s", f"{inc_s / eq_inc[0]:.1f}x"],
        ["converged accuracy (>= {:.4f}, averaged SGD)".format(lr_acc - 0.003),
         f"{fmt(conv[0])} s, {conv[1]} epoch(s), {fmt(conv[2], 4)}{conv_note}",
         f"dask-ml L-BFGS {fmt(lr_s)} s", f"{lr_s / conv[0]:.1f}x (target >= 5x)"],
        ["s / epoch vs bandwidth floor (default, shuffle='batches')", f"{fmt(per_epoch, 3)} s",
         f"floor {fmt(floor, 3)} s (2 x {nbytes / 1e9:.2f} GB at {bandwidth:.0f} GB/s)",
         f"{per_epoch / floor:.1f}x the floor (target <= 3x)"],
        ["s / epoch vs floor, shuffle=True (every row gathered at random)",
         f"{fmt(bs_epoch, 3)} s", f"floor {fmt(floor, 3)} s",
         f"{bs_epoch / floor:.1f}x the floor (target <= 3x)"],
        ["s / epoch vs floor, shuffle=False (contiguous mini-batches)",
         f"{fmt(ns_epoch, 3)} s", f"floor {fmt(floor, 3)} s",
         f"{ns_epoch / floor:.1f}x the floor (target <= 3x)"],
    ]
    out += ["", table(["target", "skdml", "reference", "ratio"], targets)]
    return "\n".join(out), data


def sync_section(data, seeds=SEEDS):
    from skdml.linear_model import SGDClassifier

    Xtr, ytr, Xte, yte = data
    rows = []
    for sync in ("epoch", 64, 16, 4):
        for average in (False, True):
            times, accs, rounds = [], [], None
            for seed in seeds:
                clf = SGDClassifier(loss="log_loss", max_iter=EPOCHS, tol=None, random_state=seed,
                                    sync_every=sync, average=average)
                t = time.perf_counter()
                clf.fit(Xtr, ytr)
                times.append(time.perf_counter() - t)
                accs.append(clf.score(Xte, yte))
            from skdml.linear_model._sgd import _Plan

            lengths = [c for c in Xtr.chunks[0]]
            rounds = _Plan(lengths, "auto", sync).n_rounds
            rows.append([str(sync), "yes" if average else "no", str(rounds),
                         fmt(statistics.median(times)),
                         f"{np.mean(accs):.4f} ({min(accs):.4f}-{max(accs):.4f})"])
    return "\n".join([
        f"### Accuracy against wall time, sync_every ({EPOCHS} epochs, binary, seeds "
        f"{list(seeds)})", "",
        table(["sync_every", "average", "rounds / epoch", "fit s (median)",
               "test accuracy mean (min-max)"], rows)])


def multiclass_section(client, n_train, n_test, chunk):
    data, host, _ = make_data(client, n_train, n_test, 10, chunk)
    fit_skdml(data, 1, seeds=(0,))
    sk_s, sk_acc = fit_sklearn(host, EPOCHS, seeds=(0,))
    sd_s, sd_acc, _ = fit_skdml(data, EPOCHS)
    av_s, av_acc, _ = fit_skdml(data, EPOCHS, average=True)
    rows = [["skdml SGDClassifier (2 workers)", fmt(sd_s), fmt(sd_acc, 4), "1.00x"],
            ["skdml SGDClassifier, average=True", fmt(av_s), fmt(av_acc, 4),
             f"{av_s / sd_s:.2f}x"],
            ["scikit-learn SGDClassifier (one-vs-rest, 1 thread)", fmt(sk_s), fmt(sk_acc, 4),
             f"{sk_s / sd_s:.1f}x"]]
    return "\n".join([f"### 10 classes, {n_train:,} x 100, log_loss, {EPOCHS} epochs", "",
                      f"skdml: median time and mean accuracy over random_state {list(SEEDS)}; "
                      "scikit-learn (27 s a fit): random_state 0.", "",
                      table(["method", "fit s", "test accuracy", "time / skdml time"], rows)])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    n_train, n_test = (100_000, 20_000) if args.quick else (1_000_000, 200_000)
    chunk = n_train // 4
    loads = [os.getloadavg()[0]]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="8GiB") as cluster, Client(cluster) as client:
        bandwidth = measure_bandwidth(client)
        binary, data = binary_section(client, n_train, n_test, chunk, bandwidth)
        loads.append(os.getloadavg()[0])
        print(binary, flush=True)
        sync = sync_section(data)
        print(sync, flush=True)
        del data
        multi = multiclass_section(client, n_train, n_test, chunk)
        print(multi, flush=True)
    text = "\n\n".join([
        "## SGDClassifier (benchmarks/sgd.py)", "",
        f"Machine: {machine_line()}; load average {loads[0]:.1f} at the start, {loads[1]:.1f} "
        "after the binary section (shared machine: other jobs come and go, and repeated runs "
        "of this script have differed by up to 30%); "
        f"2-worker x 1-thread process LocalCluster; copy bandwidth "
        f"of the two workers together {bandwidth:.0f} GB/s. All contenders run side by side in "
        "one process on the same data" + (" (--quick size)." if args.quick else "."),
        binary, sync, multi])
    if not args.no_write:
        write_section("sgd", text)
    print(text)


if __name__ == "__main__":
    main()
