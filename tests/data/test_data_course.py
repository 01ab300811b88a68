"""Load the CMU 10-601 course files kept beside the repository (skipped when absent)."""
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import load_csv, load_file, load_sparse

# tests/data/<this file> -> parents[2] is the repository root; the data sits next to it.
COURSE = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmu601"


def course_file(*parts):
    path = COURSE.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"course data not available: {'/'.join(parts)}")
    return path


def test_small_train_csv():
    X, y = load_csv(course_file("nn", "smallTrain.csv"), label="first", header=None)
    assert X.shape == (500, 128) and X.dtype == np.float64
    assert y.dtype == np.int64
    assert np.bincount(y).tolist() == [50] * 10
    assert set(np.unique(X).tolist()) == {0.0, 1.0}
    first = course_file("nn", "smallTrain.csv").read_text().splitlines()[0].split(",")
    assert y[0] == int(first[0]) and X[0].tolist() == [float(v) for v in first[1:]]


def test_tiny_train_without_trailing_newline():
    X, y = load_file(course_file("nn", "tinyTrain.csv"))
    assert X.tolist() == [[0, 1, 1, 1, 0], [0, 0, 0, 1, 0]]
    assert y.tolist() == [7, 9]


def test_formatted_sparse_train():
    n_features = len(course_file("lr", "dict.txt").read_text().splitlines())
    assert n_features == 39176
    path = course_file("lr", "largeoutput", "model1_formatted_train.tsv")
    X, y = load_sparse(path, n_features=n_features, dtype=np.float32)
    assert X.shape == (1200, 39176) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [600, 600]
    lines = path.read_text().splitlines()
    assert X.sum() == sum(len(line.split("\t")) - 1 for line in lines)
    assert X.max() == 1.0
    first = [int(token.split(":")[0]) for token in lines[0].split("\t")[1:]]
    assert np.flatnonzero(X[0]).tolist() == sorted(first)


def test_formatted_sparse_valid_via_load_file():
    path = course_file("lr", "largeoutput", "model1_formatted_valid.tsv")
    X, y = load_file(path, n_features=39176, dtype=np.float32)
    assert X.shape == (200, 39176)
    assert set(y.tolist()) == {0, 1}
