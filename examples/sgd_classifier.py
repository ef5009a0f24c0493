"""
Data-parallel SGD: SGDClassifier on a local cluster
===================================================

Trains a logistic regression with :class:`skdml.linear_model.SGDClassifier` on a dataset that
is generated chunk by chunk on the workers and stays there: every partition runs mini-batch SGD
on its own rows and the models are averaged across the workers once per epoch. The same fit with
scikit-learn's ``SGDClassifier`` on the same data (as NumPy arrays on the client) gives the
reference accuracy and time. An L1-penalized fit shows ``sparsify()``. Predictions on Dask
input are lazy Dask arrays.
"""
import time

import dask
from sklearn.linear_model import SGDClassifier as SklearnSGDClassifier

import skdml
from skdml.datasets import make_classification
from skdml.linear_model import SGDClassifier


def main():
    with skdml.local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as client:
        print(f"Dask dashboard: {client.dashboard_link}")
        X, y = make_classification(n_samples=300_000, n_features=50, n_informative=10,
                                   chunks=60_000, random_state=0)
        X_train, y_train, X_test, y_test = X[:240_000], y[:240_000], X[240_000:], y[240_000:]
        # generate the data once, on the workers; every epoch reads it where it is
        X_train, y_train, X_test, y_test = client.persist([X_train, y_train, X_test, y_test])
        print(f"X_train: {X_train.shape} in {X_train.npartitions} partitions")

        params = dict(loss="log_loss", max_iter=5, tol=None, random_state=0)
        start = time.perf_counter()
        clf = SGDClassifier(**params).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        print(f"skdml SGDClassifier:        {seconds:5.2f} s, {clf.n_iter_} epochs, "
              f"test accuracy {clf.score(X_test, y_test):.4f}")

        # averaged SGD: the average of the iterates, usually closer to the optimum
        avg = SGDClassifier(average=True, **params).fit(X_train, y_train)
        print(f"skdml, averaged SGD:        test accuracy {avg.score(X_test, y_test):.4f}")

        # an L1 penalty zeroes the uninformative features' weights; sparsify() then keeps only
        # the others (a CSR coef_), with the same predictions
        l1 = SGDClassifier(penalty="l1", alpha=1e-3, **params).fit(X_train, y_train)
        l1.sparsify()
        print(f"skdml, L1 penalty:          test accuracy {l1.score(X_test, y_test):.4f}, "
              f"{l1.coef_.nnz} of {l1.coef_.shape[1]} weights kept")

        # scikit-learn on the same data, on the client
        Xtr, ytr, Xte, yte = dask.compute(X_train, y_train, X_test, y_test)
        start = time.perf_counter()
        ref = SklearnSGDClassifier(**params).fit(Xtr, ytr)
        seconds = time.perf_counter() - start
        print(f"scikit-learn SGDClassifier: {seconds:5.2f} s, {ref.n_iter_} epochs, "
              f"test accuracy {ref.score(Xte, yte):.4f}")

        # predictions on Dask input are lazy: nothing runs until .compute()
        proba = clf.predict_proba(X_test)
        print(f"predict_proba: lazy {type(proba).__name__} of shape {proba.shape}; first rows:")
        print(proba[:3].compute().round(3))


if __name__ == "__main__":
    main()
