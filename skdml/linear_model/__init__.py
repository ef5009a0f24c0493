"""Linear models trained by data-parallel stochastic gradient descent."""
from ._sgd import SGDClassifier, SGDRegressor

__all__ = ["SGDClassifier", "SGDRegressor"]
