"""Clustering: :class:`KMeans` (k-means|| initialisation, Lloyd iterations) on Dask."""
from ._kmeans import KMeans

__all__ = ["KMeans"]
