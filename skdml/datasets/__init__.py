"""Lazy synthetic data sets: Dask arrays generated chunk by chunk on the workers.

Each generator mirrors a scikit-learn one (``make_blobs``, ``make_classification``,
``make_regression``) or serves a benchmark (``make_ratings`` for recommenders). Building the
arrays computes nothing; every chunk is drawn by its own task from a seed derived from
``random_state`` and the chunk index, so the data can be far larger than the client's memory
and are the same every time they are computed with the same seed and chunking.
"""
from ._generators import make_blobs, make_classification, make_regression
from ._ratings import Ratings, make_ratings

__all__ = ["Ratings", "make_blobs", "make_classification", "make_ratings", "make_regression"]
