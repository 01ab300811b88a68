"""Datasets for chainrule: 2-D toy sets, bundled digits, file loaders and preprocessing."""
from chainrule.data.loaders import DataError, csv_columns, load_csv, load_digits, load_file, load_sparse
from chainrule.data.preprocess import Standardizer, batches, check_dataset, one_hot, train_test_split
from chainrule.data.toy import (
    DATASETS, circle, gaussians, load, moons, multi_gaussian, plane, spiral, xor,
)

__all__ = [
    "DATASETS", "load", "circle", "xor", "gaussians", "spiral", "moons", "plane", "multi_gaussian",
    "load_digits", "load_csv", "load_sparse", "load_file", "csv_columns", "DataError",
    "train_test_split", "Standardizer", "one_hot", "batches", "check_dataset",
]
