"""Progress bars of the driver loops: off by default in scripts, on with the ``progress``
setting, and shown by ``verbose`` in a real Jupyter kernel."""
import textwrap

import numpy as np
import pytest

import skdml
from skdml._progress import LoopProgress, in_notebook
from skdml.cluster import KMeans
from skdml.linear_model import SGDClassifier


def _blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.5, (100, 2)) for c in (0, 5, 10)])


def test_not_a_notebook_here():
    assert not in_notebook()
    assert not LoopProgress(10, "x", verbose=1).shown  # verbose alone: messages, no bar


def test_no_bar_by_default(capsys):
    KMeans(3, n_init=1, random_state=0).fit(_blobs())
    assert "KMeans Lloyd" not in capsys.readouterr().err


def test_progress_setting_shows_kmeans_bar_with_inertia(capsys):
    with skdml.config.set(progress=True):
        km = KMeans(3, n_init=1, random_state=0).fit(_blobs())
    err = capsys.readouterr().err
    assert "KMeans Lloyd" in err
    assert f"{km.n_iter_}/300" in err  # closed where the loop stopped
    assert "inertia=" in err and "shift=" in err


def test_progress_setting_shows_sgd_bar(capsys):
    X = _blobs()
    y = (X[:, 0] > 5).astype(int)
    with skdml.config.set(progress=True):
        SGDClassifier(max_iter=3, tol=None, random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "SGDClassifier epochs" in err and "3/3" in err and "loss=" in err


def test_bar_closes_when_the_fit_fails(capsys):
    X = _blobs()
    with skdml.config.set(progress=True), pytest.raises(ValueError, match="non-zero"):
        KMeans(3, n_init=1, init=X[:3]).fit(X, sample_weight=np.zeros(len(X)))


def test_verbose_kmeans_in_a_jupyter_kernel_shows_a_bar(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = textwrap.dedent("""
        import dask
        import numpy as np
        from skdml.cluster import KMeans
        rng = np.random.default_rng(0)
        X = np.concatenate([rng.normal(c, 0.5, (100, 2)) for c in (0, 5, 10)])
        with dask.config.set(scheduler="sync"):
            KMeans(3, n_init=1, random_state=0, verbose=1).fit(X)
    """)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json"
               in o.get("data", {})]
    assert "Iteration 0, inertia" in text  # the verbose messages
    assert widgets or "KMeans Lloyd" in text  # the bar: a widget, or text without ipywidgets
