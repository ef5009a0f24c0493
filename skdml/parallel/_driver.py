"""Running one iteration of a driver loop so that a cluster failure redoes only that iteration."""
from __future__ import annotations

import logging
import time

from .. import _config
from ._executor import _forget_frames

__all__ = ["run_step", "CLUSTER_ERRORS"]

logger = logging.getLogger("skdml")


def _cluster_errors():
    errors = [OSError]  # includes ConnectionError
    try:
        from distributed.client import FutureCancelledError, FuturesCancelledError

        errors += [FutureCancelledError, FuturesCancelledError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from distributed.scheduler import KilledWorker

        errors.append(KilledWorker)
    except ImportError:  # pragma: no cover
        pass
    try:
        from distributed.comm.core import CommClosedError

        errors.append(CommClosedError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


#: Exceptions that mean "the cluster lost something", not "the kernel is wrong".
CLUSTER_ERRORS = _cluster_errors()


def run_step(step, *args, retries=None, name="step", **kwargs):
    """Run one driver iteration ``step(*args, **kwargs)``, redoing it after a cluster failure.

    Drivers keep the last completed iteration's model state on the client (a few KB to MB) and
    pass it in ``args``; if the iteration fails because workers died or results were lost
    (``KilledWorker``, cancelled futures, closed connections), the same iteration is submitted
    again from that state instead of failing the whole fit. Errors raised by the kernels
    themselves (``ValueError`` for NaN input, say) propagate at once.

    Parameters
    ----------
    step : callable
        One iteration: builds its graph with :mod:`skdml.parallel` and returns client-side values.
    *args, **kwargs
        Passed to ``step``.
    retries : int, default=None
        How often the iteration is redone (default: ``skdml.config`` ``retries``).
    name : str, default="step"
        Used in the log message of a retry.

    Returns
    -------
    object
        What ``step`` returns.

    Examples
    --------
    >>> from skdml.parallel import run_step
    >>> run_step(lambda state: state + 1, 41)
    42
    """
    retries = _config.get("retries") if retries is None else retries
    attempt = 0
    while True:
        try:
            return step(*args, **kwargs)
        except CLUSTER_ERRORS as exc:
            if attempt >= retries:
                raise
            attempt += 1
            logger.warning("skdml: %s failed on the cluster (%s: %s); redoing it from the last "
                           "completed state (attempt %d of %d).", name, type(exc).__name__, exc,
                           attempt, retries)
            # the failed attempt's frames (and the futures they hold) go now, not at the next
            # garbage collection (cluster errors come out of distributed's sync in a cycle)
            _forget_frames(exc)
            time.sleep(min(0.1 * attempt, 1.0))
