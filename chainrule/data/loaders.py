"""Readers for CSV files, sparse `label idx:value` files and the bundled digits set."""
from __future__ import annotations

import csv
import gzip
import re
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["DataError", "load_csv", "load_sparse", "load_file", "load_digits"]


class DataError(ValueError):
    """A data file or array that cannot be used; the message says where and what is wrong."""


def _fail(path, lineno, problem):
    raise DataError(f"{path}: line {lineno}: {problem}")


def _decode(path, raw):
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: broken gzip data ({e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    # Keep 1-based line numbers of the non-blank lines so errors point into the file.
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DataError(f"{path}: file is empty")
    return lines


def _lines(path):
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    return path, _decode(path, path.read_bytes())


def _labels(values):
    """Integral labels become int64 (classes); anything else stays float64 (regression)."""
    values = np.asarray(values, dtype=np.float64)
    if np.all(values == np.round(values)):
        return values.astype(np.int64)
    return values


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_column(path, label, names, width):
    if label == "first":
        return 0
    if label == "last":
        return width - 1
    if isinstance(label, str):
        if names is None:
            raise DataError(f"{path}: label column {label!r} needs a header row (pass header=True)")
        if label not in names:
            raise DataError(f"{path}: no column named {label!r}; columns: {', '.join(names)}")
        return names.index(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not -width <= label < width:
            raise DataError(f"{path}: label column {label} out of range for {width} columns")
        return int(label) % width
    raise ValueError(f"label must be 'first', 'last', a column name or an int, got {label!r}")


def _parse_csv(path, lines, label, header, delimiter, dtype):
    linenos = [n for n, _ in lines]
    records = list(csv.reader([line for _, line in lines], delimiter=delimiter))
    width = len(records[0])
    if width < 2:
        _fail(path, linenos[0], f"need a label and at least one feature column, found "
                                f"{width} column(s) (wrong delimiter {delimiter!r}?)")
    if header is None:
        header = not all(_is_number(cell) for cell in records[0])
    names = [cell.strip() for cell in records[0]] if header else None
    if header:
        linenos, records = linenos[1:], records[1:]
        if not records:
            raise DataError(f"{path}: no data rows after the header")
    for lineno, record in zip(linenos, records):
        if len(record) != width:
            _fail(path, lineno, f"expected {width} columns, found {len(record)}")
    try:
        values = np.array(records, dtype=np.float64)
    except ValueError:
        # Slow path: name the offending cell, or accept what Python's float() reads.
        for lineno, record in zip(linenos, records):
            for j, cell in enumerate(record, 1):
                if not _is_number(cell):
                    _fail(path, lineno, f"column {j} is not a number: {cell!r}")
        values = np.array([list(map(float, record)) for record in records])
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = bad[0]
        _fail(path, linenos[row], f"column {col + 1} is {values[row, col]} (NaN/inf not allowed)")
    col = _label_column(path, label, names, width)
    return np.delete(values, col, axis=1).astype(dtype), _labels(values[:, col])


def load_csv(path, label="first", header=None, delimiter=",", dtype=np.float64):
    """Read a numeric CSV (optionally .gz) into (X, y); header=None detects a header row.

    label picks the target column: "first", "last", a header name or an int index.
    Labels come back int64 when all are whole numbers, else float64.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
    >>> _ = open(path, "w").write("a,b,label\\n0.5,1,0\\n2,3,1\\n")
    >>> X, y = load_csv(path, label="label")
    >>> X.tolist(), y.tolist()
    ([[0.5, 1.0], [2.0, 3.0]], [0, 1])
    """
    path, lines = _lines(path)
    return _parse_csv(path, lines, label, header, delimiter, dtype)


def _explain_sparse(path, lineno, label, tokens):
    if not _is_number(label):
        _fail(path, lineno, f"label is not a number: {label!r}")
    for k, token in enumerate(tokens, 1):
        index, sep, value = token.partition(":")
        try:
            int(index)
        except ValueError:
            sep = ""
        if not sep or ":" in value or not _is_number(value):
            _fail(path, lineno, f"feature {k} is not 'index:value': {token!r}")


# One label, then whitespace-separated `index:value` tokens each holding exactly one colon.
_SPARSE_LINE = re.compile(r"\s*\S+(?:\s+[^\s:]+:[^\s:]+)*\s*")


def _parse_sparse(path, lines, n_features, dtype=np.float64):
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    y = np.empty(len(lines))
    indices, values = [], []
    for row, (lineno, line) in enumerate(lines):
        parts = line.replace(":", " ").split()
        try:
            if not _SPARSE_LINE.fullmatch(line):
                raise ValueError
            y[row] = float(parts[0])
            indices.append(np.array(parts[1::2], dtype=np.int64))
            values.append(np.array(parts[2::2], dtype=np.float64))
        except ValueError:
            label, *tokens = line.split()
            _explain_sparse(path, lineno, label, tokens)
            raise
    # Validate all entries at once; `rows` maps each entry back to its line for the message.
    counts = [len(i) for i in indices]
    rows = np.repeat(np.arange(len(lines)), counts)
    index, value = np.concatenate(indices), np.concatenate(values)
    linenos = [n for n, _ in lines]
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        _fail(path, linenos[bad[0]], f"label is {y[bad[0]]} (NaN/inf not allowed)")
    bad = np.flatnonzero((index < 0) | (index >= n_features))
    if len(bad):
        k = bad[0]
        _fail(path, linenos[rows[k]], f"index {index[k]} out of range for n_features={n_features}")
    bad = np.flatnonzero(~np.isfinite(value))
    if len(bad):
        k = bad[0]
        _fail(path, linenos[rows[k]], f"index {index[k]} has value {value[k]} (NaN/inf not allowed)")
    cell = rows * n_features + index
    order = np.argsort(cell, kind="stable")
    repeats = order[1:][cell[order][1:] == cell[order][:-1]]
    if len(repeats):
        k = repeats.min()
        _fail(path, linenos[rows[k]], f"index {index[k]} appears more than once")
    X = np.zeros((len(lines), n_features), dtype=dtype)
    X[rows, index] = value
    return X, _labels(y)


def load_sparse(path, n_features, dtype=np.float64):
    """Read `label<TAB>index:value<TAB>...` lines (0-based indices) into dense (X, y).

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.tsv")
    >>> _ = open(path, "w").write("1\\t0:1\\t2:0.5\\n0\\t1:1\\n")
    >>> X, y = load_sparse(path, n_features=3)
    >>> X.tolist(), y.tolist()
    ([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]], [1, 0])
    """
    path, lines = _lines(path)
    return _parse_sparse(path, lines, n_features, dtype)


def _looks_sparse(lines):
    # A line with only a label says nothing, so look at the first line with features.
    for _, line in lines[:20]:
        tokens = line.split()
        if len(tokens) > 1:
            return ":" in tokens[1]
    return False


def load_file(path, **kw):
    """Read a CSV or sparse file, choosing by extension and content; kw go to that loader.

    Sparse files need n_features=...; a .tsv without ':' is read as tab-separated CSV.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.tsv")
    >>> _ = open(path, "w").write("1\\t0:1\\n0\\t1:1\\n")
    >>> load_file(path, n_features=2)[0].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    path, lines = _lines(path)
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz")) and _looks_sparse(lines):
        if "n_features" not in kw:
            raise DataError(f"{path}: looks like a sparse 'label index:value' file; pass n_features=...")
        return _parse_sparse(path, lines, **kw)
    if "delimiter" not in kw and "\t" in lines[0][1] and "," not in lines[0][1]:
        kw["delimiter"] = "\t"
    kw = {"label": "first", "header": None, "delimiter": ",", "dtype": np.float64, **kw}
    return _parse_csv(path, lines, **kw)


def load_digits():
    """The bundled 8x8 handwritten digits: X float64 (1797, 64) in 0..16, y int64 in 0..9.

    Source and license: DIGITS.md next to this module.

    >>> X, y = load_digits()
    >>> X.shape, int(X.max()), sorted(set(y.tolist())) == list(range(10))
    ((1797, 64), 16, True)
    """
    resource = resources.files("chainrule.data").joinpath("digits.csv.gz")
    lines = _decode("digits.csv.gz", resource.read_bytes())
    return _parse_csv("digits.csv.gz", lines, "last", False, ",", np.float64)
