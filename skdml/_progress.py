"""Progress of a driver loop (Lloyd iterations, SGD epochs) as a tqdm bar.

Shown when the estimator's ``verbose`` is set and the code runs in a Jupyter kernel (a widget
bar next to the per-iteration messages), or anywhere when the ``progress`` setting is on (see
:mod:`skdml.config`). The bar's postfix carries the loop's figures (inertia and center shift,
loss), so a notebook shows where a long fit stands without scrolling through messages; the
per-task view is Dask's dashboard.
"""
from __future__ import annotations

from . import _config

__all__ = ["LoopProgress", "in_notebook"]


def in_notebook():
    """Whether the code runs in a Jupyter kernel (an IPython ZMQ shell)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm_class():
    """tqdm's widget bar in a notebook with ipywidgets (the ``notebook`` extra), else its text
    bar (on stderr)."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            pass
        else:
            from tqdm.notebook import tqdm

            return tqdm
    from tqdm.std import tqdm

    return tqdm


class LoopProgress:
    """A progress bar over at most ``total`` steps, or nothing when not wanted.

    Parameters
    ----------
    total : int
        Most steps the loop may take (it may stop earlier: :meth:`close` ends the bar there).
    desc : str
        Label, e.g. ``"KMeans Lloyd"``.
    verbose : int or bool
        The estimator's ``verbose``: a bar is shown for a truthy value in a notebook.
    """

    def __init__(self, total, desc, verbose):
        self.bar = None
        if not (_config.get("progress") or (verbose and in_notebook())):
            return
        self.bar = _tqdm_class()(total=int(total), desc=desc, unit="it", leave=True)

    @property
    def shown(self):
        """Whether a bar is shown."""
        return self.bar is not None

    def step(self, **figures):
        """Advance by one step, showing ``figures`` (name: number) after the bar."""
        if self.bar is None:
            return
        self.bar.set_postfix({k: f"{v:.6g}" for k, v in figures.items()}, refresh=False)
        self.bar.update(1)

    def close(self):
        """End the bar (where the loop stopped)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
