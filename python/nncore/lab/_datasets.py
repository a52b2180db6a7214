"""The lab's data sets: a classification problem split once into training and test rows
(`Dataset`), the built-in problems, and a CSV file read as one; plus the network every experiment
trains (`HIDDEN`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..network import Network

# Every experiment's network has these hidden layers (ReLU unless an experiment says otherwise).
HIDDEN = (64, 64)
ARCHITECTURE = f"{len(HIDDEN)}×{HIDDEN[0]} ReLU"  # as titles and help texts name it

@dataclass(frozen=True)
class Dataset:
    """A classification problem split once (the same split for every seed): float64 inputs,
    integer class labels 0..K-1."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def loss(self) -> str:
        return "logistic" if self.n_classes == 2 else "softmax"

    def targets(self, y) -> np.ndarray:
        """y as the network's targets: a 0/1 column for two classes, labels for softmax."""
        return y.astype(np.float64).reshape(-1, 1) if self.n_classes == 2 else y

    def network(self, hidden=HIDDEN, **options) -> Network:
        """An MLP for this problem (one output for two classes, else K softmax outputs)."""
        outputs = 1 if self.n_classes == 2 else self.n_classes
        return Network([self.X_train.shape[1], *hidden, outputs], loss=self.loss,
                       dtype=np.float64, n_threads=1, **options)

    def accuracy(self, network: Network, X, y) -> float:
        scores = network.forward(X)
        predicted = (scores[:, 0] >= 0).astype(int) if self.n_classes == 2 else scores.argmax(1)
        return float(np.mean(predicted == y))


def _split(name, X, y, *, test_size, standardize=True) -> Dataset:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    classes, y = np.unique(y, return_inverse=True)
    X_train, X_test, y_train, y_test = train_test_split(
        np.asarray(X, dtype=np.float64), y, test_size=test_size, stratify=y, random_state=0)
    if standardize:
        scaler = StandardScaler().fit(X_train)  # statistics of the training part only
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return Dataset(name, np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test),
                   y_test, tuple(classes.tolist()))


BUILT_IN = ("digits", "noisy-binary", "breast-cancer")


def load_dataset(name: str, *, standardize: bool = True) -> Dataset:
    """A built-in problem: 'digits' (load_digits, 70/30 split), 'noisy-binary'
    (make_classification with 5% flipped labels, 50/50 split) or 'breast-cancer' (features whose
    scales span six orders of magnitude, 70/30 split); standardised on the training part unless
    standardize=False. Splits are stratified with random_state=0."""
    import sklearn.datasets as sd

    if name == "digits":
        return _split(name, *sd.load_digits(return_X_y=True), test_size=0.3,
                      standardize=standardize)
    if name == "noisy-binary":
        X, y = sd.make_classification(n_samples=4000, n_features=20, n_informative=10,
                                      flip_y=0.05, random_state=0)
        return _split(name, X, y, test_size=0.5, standardize=standardize)
    if name == "breast-cancer":
        return _split(name, *sd.load_breast_cancer(return_X_y=True), test_size=0.3,
                      standardize=standardize)
    raise ValueError(f"unknown data set {name!r}; built in: {', '.join(BUILT_IN)}")


def load_datasets(names=None, csv=None, target=None, *, default=("digits",),
                  standardize: bool = True) -> list[Dataset]:
    """The data sets of one experiment: the CSV file when given, else the built-in `names`
    (one name or a list; `default` when None)."""
    if csv is not None:
        if names is not None:
            raise ValueError("give built-in data sets or a CSV file, not both")
        return [csv_dataset(csv, target, standardize=standardize)]
    names = list(default) if names is None else [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("no data set chosen")
    return [load_dataset(name, standardize=standardize) for name in dict.fromkeys(names)]


def csv_dataset(path, target=None, *, standardize: bool = True) -> Dataset:
    """A CSV file's rows as a classification problem: `target` (default: the last column) holds
    the classes; numeric columns are standardised and text columns one-hot encoded on the
    training part (70/30 stratified split); a missing value is an error naming its column."""
    from ..tabular import Preprocessing, check_complete, pop_target, read_csv

    frame = read_csv(path)
    target, labels = pop_target(frame, target, path)
    if labels.isna().any():
        raise ValueError(f"target {target!r} of {path} is empty in "
                         f"{int(labels.isna().sum())} row(s): fill or drop them first")
    check_complete(frame, where=str(path),
                   remedy="the lab takes complete data; fill or drop them first")
    classes, y = np.unique(labels.map(str).to_numpy(), return_inverse=True)
    if len(classes) < 2 or len(classes) > max(20, len(y) // 10):
        raise ValueError(f"target {target!r} has {len(classes)} distinct values; the lab needs "
                         f"class labels (2 to {max(20, len(y) // 10)} classes)")
    from sklearn.model_selection import train_test_split

    train_rows, test_rows = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y,
                                             random_state=0)
    prep = Preprocessing.fit(frame.iloc[train_rows], standardize=standardize)
    return Dataset(Path(path).stem, prep.transform(frame.iloc[train_rows]), y[train_rows],
                   prep.transform(frame.iloc[test_rows]), y[test_rows], tuple(classes.tolist()))


