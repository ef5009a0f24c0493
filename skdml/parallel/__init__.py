"""The engine: how partial results travel and how failures are survived.

Every estimator maps a pure per-partition kernel over persisted row-partitions with
:func:`map_partitions` and combines the partial results with :func:`tree_reduce` /
:func:`aggregate` (when the client needs the result) or :func:`allreduce` (when every partition
needs it); :func:`broadcast` ships small model state once per worker. Tasks are named
``skdml-<algorithm>-<stage>`` so the Dask dashboard reads like the algorithm.
"""
from ._driver import CLUSTER_ERRORS, run_step
from ._executor import Executor, NoWorkersError, get_executor
from ._map import Replicated, map_partitions
from ._partitions import Partitions, Parts, persist_partitions
from ._reduce import aggregate, allreduce, broadcast, tree_reduce
from ._resident import Collective, ResidentLoopAborted, run_resident

__all__ = [
    "Collective",
    "Executor",
    "NoWorkersError",
    "Partitions",
    "Parts",
    "Replicated",
    "ResidentLoopAborted",
    "aggregate",
    "allreduce",
    "broadcast",
    "CLUSTER_ERRORS",
    "run_resident",
    "run_step",
    "get_executor",
    "map_partitions",
    "persist_partitions",
    "tree_reduce",
]
