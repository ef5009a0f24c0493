"""scikit-learn's estimator checks on SGDClassifier and SGDRegressor (NumPy input, no Client:
Dask's threaded scheduler runs the same graphs).

``max_iter=20`` keeps the checks that fit noisy data with ``tol`` from running up to 1000 epochs
(scikit-learn's own test suite shortens SGD the same way).
"""
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdml.linear_model import SGDClassifier, SGDRegressor

_WEIGHTS = (
    "SGD visits every row once per epoch whatever its weight, and the learning rate follows a "
    "per-row clock: an integer weight k is not k copies of the row (scikit-learn's own SGD "
    "estimators fail this check for the same reason)."
)


def expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS,
    }


# several checks fit noisy data for a few epochs on purpose
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [SGDClassifier(max_iter=20, random_state=0), SGDRegressor(max_iter=20, random_state=0)],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
