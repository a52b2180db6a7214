"""pytest plugin: scikit-learn's own MLP tests, run against nncore's estimators.

Loaded with ``-p nncore_as_sklearn`` (see tests/test_sklearn_suite.py). Before any test module is
collected it puts nncore's MLPClassifier and MLPRegressor where scikit-learn's test file imports
its own from, so that file runs unmodified against nncore.
"""
import sklearn.neural_network

import nncore


def pytest_configure(config):
    sklearn.neural_network.MLPClassifier = nncore.MLPClassifier
    sklearn.neural_network.MLPRegressor = nncore.MLPRegressor
