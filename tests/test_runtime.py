"""local_cluster, get_client, show_versions."""
import pytest

import skdml


def test_local_cluster_starts_and_closes_cleanly():
    client = skdml.local_cluster(n_workers=2, threads_per_worker=1, processes=False,
                                 gpu=False, dashboard_address=":0")
    try:
        assert skdml.get_client() is client
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.dashboard_link.startswith("http")
        assert client.submit(lambda x: x + 1, 1).result() == 2
    finally:
        client.close()
    assert client.status == "closed"
    assert client.cluster is None or client.cluster.status.name == "closed"
    assert skdml.get_client() is None


def test_local_cluster_gpu_true_without_gpu_says_how_to_fix():
    if skdml._backend.gpu_available():  # pragma: no cover - GPU machines
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="gpu=False for a CPU cluster"):
        skdml.local_cluster(gpu=True)


def test_local_cluster_rejects_bad_gpu_argument():
    with pytest.raises(ValueError, match="gpu must be"):
        skdml.local_cluster(gpu="yes")


def test_get_client_without_cluster_is_none():
    assert skdml.get_client() is None


def test_show_versions(capsys):
    skdml.show_versions()
    out = capsys.readouterr().out
    for name in ["skdml", "dask", "distributed", "numpy", "sklearn", "cupy", "gpu visible"]:
        assert name in out
    assert skdml.__version__ in out
