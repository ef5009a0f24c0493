"""skdml's settings, stored in ``dask.config`` under the ``skdml`` namespace.

They can be set in code (``skdml.config.set(speculative=False)``, also as a context manager),
in Dask's YAML files (``skdml: {speculative: false}``) or through environment variables
(``DASK_SKDML__SPECULATIVE=False``), exactly like Dask's own settings.
"""
from __future__ import annotations

import dask

__all__ = ["get", "set", "defaults"]

defaults = {
    # Retries of a task that raises (a worker death is handled by Dask's own allowed-failures).
    "retries": 2,
    # Speculative backup tasks for stragglers, after Spark's spark.speculation.* settings.
    "speculative": True,
    "speculation_quantile": 0.75,
    "speculation_multiplier": 1.5,
    "speculation_interval": 0.05,
    # Tasks shorter than this are never backed up (a copy costs a data transfer).
    "speculation_min_duration": 0.1,
    # Fan-in of tree reductions.
    "split_every": 8,
    # With three or more workers, values at or above this many bytes are allreduced by
    # reduce-scatter + all-gather among workers, smaller ones by tree-reduce + broadcast.
    # Measured on 4 workers (benchmarks/RESULTS.md): tree + broadcast was faster at 8 MB,
    # sharding at 80 MB, so the switch sits between them.
    "allreduce_shard_threshold": 32_000_000,
    # One task per worker per stage ("worker") or one per partition ("partition").
    "group_by": "worker",
    # Raise instead of waiting when the cluster has had no worker for this many seconds.
    "no_worker_timeout": 30.0,
    # Show a progress bar / per-iteration messages from drivers.
    "progress": False,
    # Use compiled (Numba) kernels for NumPy partitions where an estimator has them.
    "jit": True,
    # Iterative stages that support it run as worker-resident loops on a distributed cluster
    # (one task per worker thread for all the rounds, see skdml.parallel.run_resident); False
    # runs every round as tasks of its own (retries and speculation per round).
    "resident": True,
    # Seconds a member of a resident loop waits for a peer that is alive but sends nothing
    # (e.g. its worker is busy with other work) before the loop gives up and its caller goes
    # on round by round.
    "resident_timeout": 30.0,
}

dask.config.update_defaults({"skdml": dict(defaults)})


def get(name, default=None):
    """Return the setting ``name`` (e.g. ``"speculative"``), or ``default`` when unset."""
    if name not in defaults and default is None:
        raise KeyError(f"Unknown skdml setting {name!r}; known settings: {sorted(defaults)}.")
    return dask.config.get(f"skdml.{name}", default=defaults.get(name, default))


def set(**settings):  # noqa: A001 - mirrors dask.config.set
    """Change skdml settings, globally or within a ``with`` block.

    Parameters
    ----------
    **settings
        Setting names from :data:`defaults` and their new values.

    Returns
    -------
    dask.config.set
        The object Dask returns; use it as a context manager to restore the old values.

    Examples
    --------
    >>> import skdml
    >>> with skdml.config.set(speculative=False):
    ...     skdml.config.get("speculative")
    False
    """
    unknown = sorted(k for k in settings if k not in defaults)
    if unknown:
        raise KeyError(f"Unknown skdml setting(s) {unknown}; known settings: {sorted(defaults)}.")
    return dask.config.set({f"skdml.{k}": v for k, v in settings.items()})
