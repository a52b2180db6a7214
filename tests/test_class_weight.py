"""class_weight for MLPClassifier: scikit-learn's semantics (compute_sample_weight) multiplied into
sample_weight — the same model as the equivalent sample_weight fit, for every solver, early
stopping's validation scores included."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.utils.class_weight import compute_sample_weight

import nncore

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def imbalanced():
    return make_classification(n_samples=400, n_features=6, n_classes=3, n_informative=4,
                               weights=[0.7, 0.2, 0.1], random_state=0)


@pytest.mark.parametrize("solver,early_stopping", [
    ("adam", False), ("adam", True), ("sgd", False), ("sgd", True), ("lbfgs", False)])
@pytest.mark.parametrize("class_weight", ["balanced", {0: 0.5, 1: 2.0, 2: 4.0}])
def test_class_weight_is_the_equivalent_sample_weight_fit(imbalanced, solver, early_stopping,
                                                          class_weight):
    X, y = imbalanced
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0,
                   early_stopping=early_stopping)
    weighted = nncore.MLPClassifier(class_weight=class_weight, **options).fit(X, y)
    reference = nncore.MLPClassifier(**options).fit(
        X, y, sample_weight=compute_sample_weight(class_weight, y))
    np.testing.assert_allclose(weighted.network_.params, reference.network_.params, rtol=1e-12,
                               atol=1e-12)
    if early_stopping:
        assert weighted.validation_scores_ == reference.validation_scores_


def test_class_weight_multiplies_sample_weight(imbalanced):
    X, y = imbalanced
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    class_weight = {0: 1.0, 1: 3.0, 2: 5.0}
    a = nncore.MLPClassifier((8,), max_iter=10, random_state=0, class_weight=class_weight).fit(
        X, y, sample_weight=sample_weight)
    b = nncore.MLPClassifier((8,), max_iter=10, random_state=0).fit(
        X, y, sample_weight=sample_weight * compute_sample_weight(class_weight, y))
    np.testing.assert_array_equal(a.network_.params, b.network_.params)


def test_balanced_weights_raise_the_recall_of_the_rare_class(imbalanced):
    X, y = imbalanced
    plain = nncore.MLPClassifier((16,), max_iter=200, random_state=0).fit(X, y)
    balanced = nncore.MLPClassifier((16,), max_iter=200, random_state=0,
                                    class_weight="balanced").fit(X, y)
    rare = lambda model: recall_score(y, model.predict(X), labels=[2], average="macro")  # noqa
    assert rare(balanced) > rare(plain)


def test_partial_fit_takes_a_dict_and_refuses_balanced(imbalanced):
    X, y = imbalanced
    class_weight = {0: 1.0, 1: 2.0, 2: 3.0}
    a = nncore.MLPClassifier((8,), random_state=0, class_weight=class_weight)
    b = nncore.MLPClassifier((8,), random_state=0)
    for start in range(0, len(y), 100):
        rows = slice(start, start + 100)
        a.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        b.partial_fit(X[rows], y[rows], classes=[0, 1, 2],
                      sample_weight=compute_sample_weight(class_weight, y[rows]))
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    with pytest.raises(ValueError, match="compute_class_weight"):
        nncore.MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


def test_bad_class_weight_is_a_clear_error(imbalanced):
    X, y = imbalanced
    with pytest.raises(ValueError, match="class_weight"):
        nncore.MLPClassifier(class_weight="often").fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        nncore.MLPClassifier(class_weight={7: 1.0}, max_iter=2).fit(X, y)


def test_saved_class_weight_keeps_its_labels(tmp_path, imbalanced):
    X, y = imbalanced
    labels = np.array(["low", "mid", "high"])[y]
    model = nncore.MLPClassifier((8,), max_iter=5, random_state=0,
                                 class_weight={"low": 1.0, "mid": 2.0, "high": 4.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, labels)
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.class_weight == model.class_weight
    numbers = nncore.MLPClassifier((8,), max_iter=5, random_state=0, class_weight={0: 1, 2: 3})
    numbers.fit(X, y).save(tmp_path / "n.npz")
    assert nncore.load(tmp_path / "n.npz").class_weight == {0: 1, 2: 3}
