"""Draw the task graphs skdml's engine really builds, for the user guide.

Runs the engine on a small in-process cluster, reads each graph's tasks and dependencies from the
scheduler, and draws them layer by layer with matplotlib. Output: docs/_static/graph_*.png.
Run: ``python docs/_scripts/draw_graphs.py`` (needs the ``docs`` extra for matplotlib).
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import dask.array as da  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from dask.utils import key_split  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

from skdml.parallel import allreduce, map_partitions, persist_partitions, tree_reduce  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "_static"
COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]


def _graph(dask_scheduler, keys, ran_on):
    """Tasks reachable backwards from ``keys``: {key: (group name, worker, [dependencies])}."""
    out, todo = {}, list(keys)
    while todo:
        k = todo.pop()
        ts = dask_scheduler.tasks.get(k)
        if ts is None or k in out:
            continue
        deps = [d.key for d in ts.dependencies]
        worker = ran_on.get(k) or (next(iter(ts.who_has)).address if ts.who_has else None)
        out[k] = (key_split(k), worker, deps)
        todo.extend(deps)
    return out


def draw(graph, title, path, workers):
    depth = {}

    def level(k):
        if k not in depth:
            deps = [d for d in graph[k][2] if d in graph]
            depth[k] = 0 if not deps else 1 + max(level(d) for d in deps)
        return depth[k]

    for k in graph:
        level(k)
    layers = {}
    for k in sorted(graph, key=lambda k: (workers.index(graph[k][1]) if graph[k][1] in workers
                                          else 99, str(k))):
        layers.setdefault(depth[k], []).append(k)
    pos = {}
    width = max(len(v) for v in layers.values())
    for d, ks in layers.items():
        for i, k in enumerate(ks):
            pos[k] = ((i + 0.5) * width / len(ks), -d)
    fig, ax = plt.subplots(figsize=(max(6, width * 0.9), 1.3 * (len(layers) + 1)))
    for k, (_, _, deps) in graph.items():
        for d in deps:
            if d in pos:
                ax.annotate("", xy=pos[k], xytext=pos[d],
                            arrowprops=dict(arrowstyle="->", color="#999999", lw=0.8))
    names = sorted({g for g, _, _ in graph.values()})
    for k, (g, w, _) in graph.items():
        color = COLORS[workers.index(w) % len(COLORS)] if w in workers else "#bbbbbb"
        ax.scatter(*pos[k], s=260, color=color, zorder=3, edgecolor="black", linewidth=0.5)
    for d, ks in layers.items():
        g = graph[ks[0]][0]
        ax.text(-0.4, -d, g.replace("skdml-", ""), ha="right", va="center", fontsize=9)
    ax.set_title(title + "\n(colour = worker)", fontsize=10)
    ax.set_xlim(-width * 0.6, width + 0.2)
    ax.set_ylim(-len(layers) - 0.2, 0.6)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path} ({len(graph)} tasks, groups {names})")


def ran_on(client):
    """{key: worker} from the scheduler's task stream."""
    return {d["key"]: d["worker"] for d in client.get_task_stream(count=10_000)}


def main():
    OUT.mkdir(exist_ok=True)
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        workers = sorted(client.nthreads())
        sched = cluster.scheduler
        X = da.ones((1200, 4), chunks=(100, 4))
        client.get_task_stream()  # starts the scheduler's task-stream plugin
        parts = persist_partitions(X)

        def add(a, b):
            return a + b

        per_part = map_partitions(lambda b: b.sum(0), parts, group_by="partition",
                                  name="kmeans-lloyd", speculative=False)
        root = tree_reduce(per_part, add, split_every=4, name="kmeans-reduce")
        wait(root)
        draw(_graph(sched, [root.key], ran_on(client)), "tree_reduce: 12 partitions, split_every=4",
             OUT / "graph_tree_reduce.png", workers)

        grouped = map_partitions(lambda b: np.repeat(b.sum(0), 1000), parts, combine=add,
                                 name="sgd-local", speculative=False)
        rep = allreduce(grouped, op="sum", shard=True, name="sgd-allreduce")
        wait(list(rep.values()))
        draw(_graph(sched, [f.key for f in rep.values()], ran_on(client)),
             "allreduce (sharded) on 3 workers: local tasks, shards, reduce-scatter, all-gather",
             OUT / "graph_allreduce_sharded.png", workers)
        rep = allreduce(grouped, op="sum", shard=False, name="sgd-allreduce")
        wait(list(rep.values()))
        draw(_graph(sched, [f.key for f in rep.values()], ran_on(client)),
             "allreduce (small values): every worker folds all partials itself",
             OUT / "graph_allreduce_tree.png", workers)


if __name__ == "__main__":
    main()
