"""Readers for CSV files, sparse `label idx:value` files and the bundled digits set."""
from __future__ import annotations

import csv
import gzip
import re
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["DataError", "load_csv", "load_sparse", "load_file", "load_digits", "csv_columns"]


class DataError(ValueError):
    """A data file or array that cannot be used; the message says where and what is wrong."""


def _fail(path, lineno, problem):
    raise DataError(f"{path}: line {lineno}: {problem}")


# Bounds on what a file may make us hold, checked before the memory is spent: a 4 MB .gz can
# expand to gigabytes, and a sparse file's n_features sets the size of a dense array.
MAX_BYTES = 512 * 2**20  # text bytes, after decompression
MAX_CELLS = 2**27  # values of a table (rows x columns): 1 GiB as float64
CLASS_LIMIT = 2**31  # whole-number labels must be smaller than this in magnitude to be classes
LABEL_NAMES = ("label", "target", "y", "class")  # header names that mark the label column
_GZIP = b"\x1f\x8b"


def _too_big(path, what):
    return DataError(f"{path}: {what} more than {MAX_BYTES:,} bytes of text "
                     f"(the limit, chainrule.data.loaders.MAX_BYTES)")


def _decode(path, raw):
    if raw[:2] == _GZIP:
        import io

        # Read at most one byte past the limit: a gzip bomb stops here, not at the end of memory.
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                raw = stream.read(MAX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: broken gzip data ({e})") from None
        if len(raw) > MAX_BYTES:
            raise _too_big(path, "the compressed file expands to")
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
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)  # a compressed file is bounded again, by what it expands to
    if len(raw) > MAX_BYTES or size > MAX_BYTES:
        raise _too_big(path, "the file holds")
    return path, _decode(path, raw)


def _check_cells(path, rows, columns):
    if rows * columns > MAX_CELLS:
        raise DataError(f"{path}: {rows:,} rows x {columns:,} columns = {rows * columns:,} values, more than "
                        f"the limit of {MAX_CELLS:,} (chainrule.data.loaders.MAX_CELLS)")


def _labels(values, where="labels"):
    """Labels of a data file as read: whole numbers become int64 classes, strings stay strings
    (class names), anything else stays float64 (regression targets).

    Whole numbers of CLASS_LIMIT or more are refused: as int64 they would wrap or collide
    (1e20 and 2e20 both became -2**63), and as class labels they are surely not meant.
    ``where(i)`` names row i in the message.
    """
    values = np.asarray(values)
    if values.dtype.kind in "US":
        return np.char.strip(values.astype(str))
    values = values.astype(np.float64)
    whole = values == np.round(values)
    if np.all(whole):
        big = np.flatnonzero(np.abs(values) >= CLASS_LIMIT)
        if len(big):
            i = big[0]
            name = where(i) if callable(where) else f"{where}: row {i + 1}"
            raise DataError(f"{name}: label {values[i]:.17g} is a whole number too large to be a class label "
                            f"(class labels are integers below 2**31 in magnitude, or names); "
                            "real-valued targets need a fractional value")
        return values.astype(np.int64)
    return values


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def label_column(path, label, names, width):
    """The 0-based index of the label column: ``label`` is "first", "last", "auto" (a header
    column named label, target, y or class; else the first column of a file without a header),
    a header name or an index."""
    if label == "first":
        return 0
    if label == "last":
        return width - 1
    if label == "auto":
        if names is None:
            return 0
        found = [j for j, name in enumerate(names) if name.lower() in LABEL_NAMES]
        if len(found) == 1:
            return found[0]
        # A header without a label name: the first column may as well be a feature, and
        # training on it would leak the real label into the inputs. Ask instead of guessing.
        which = "several label-like columns" if found else f"no column named {', '.join(LABEL_NAMES)}"
        raise DataError(f"{path}: cannot tell the label column: the header has {which} "
                        f"(columns: {', '.join(names)}); pass the label column's name or index")
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
    raise ValueError(f"label must be 'first', 'last', 'auto', a column name or an int, got {label!r}")


_CHUNK = 4096  # rows converted at a time: the file's cells never all live as Python strings


def _parse_csv(path, lines, label, header, delimiter, dtype, info=None):
    """(X, y) of CSV lines; label=None reads every column as a feature (y is None).

    ``info``, a dict, receives what was decided: header ``names``, the label ``column``
    (0-based) and its ``name``.
    """
    import itertools

    records = csv.reader((line for _, line in lines), delimiter=delimiter)
    first = next(records)
    width = len(first)
    if width < 2 and label is not None:
        _fail(path, lines[0][0], f"need a label and at least one feature column, found "
                                 f"{width} column(s) (wrong delimiter {delimiter!r}?)")
    if header is None:
        header = not all(_is_number(cell) for cell in first)
    names = [cell.strip() for cell in first] if header else None
    linenos = [n for n, _ in lines]
    if header:
        linenos = linenos[1:]
        if not linenos:
            raise DataError(f"{path}: no data rows after the header")
    else:
        records = itertools.chain([first], records)
    n = len(linenos)
    _check_cells(path, n, width)
    col = None if label is None else label_column(path, label, names, width)
    values = np.empty((n, width))
    label_cells, text_labels = [], False
    for start in range(0, n, _CHUNK):
        chunk = list(itertools.islice(records, _CHUNK))
        for lineno, record in zip(linenos[start:], chunk):
            if len(record) != width:
                _fail(path, lineno, f"expected {width} columns, found {len(record)}")
        if col is not None:
            label_cells.extend(record[col] for record in chunk)
        try:
            values[start:start + len(chunk)] = np.array(chunk, dtype=np.float64)
        except ValueError:
            rows, text = _slow_rows(path, linenos[start:], chunk, col)
            values[start:start + len(chunk)], text_labels = rows, text_labels or text
    if text_labels:
        values[:, col] = 0.0  # the labels are names, kept as text below
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, j = bad[0]
        _fail(path, linenos[row], f"column {j + 1} is {values[row, j]} (NaN/inf not allowed)")
    if info is not None:
        info.update(names=names, column=col, name=None if col is None or names is None else names[col])
    if col is None:
        return values.astype(dtype, copy=False), None
    y = np.array(label_cells) if text_labels else values[:, col]
    where = f"{path}: column {col + 1}" + (f" ({names[col]!r})" if names else "")
    y = _labels(y, lambda i: f"{where}, line {linenos[i]}")
    return np.delete(values, col, axis=1).astype(dtype), y


def _slow_rows(path, linenos, chunk, col):
    """Rows that numpy could not read in one go: a label column of names (read as NaN here and
    kept as text by the caller), or a bad cell, which is named."""
    out, text = np.empty((len(chunk), len(chunk[0]))), False
    for i, (lineno, record) in enumerate(zip(linenos, chunk)):
        for j, cell in enumerate(record):
            try:
                out[i, j] = float(cell)
            except ValueError:
                if j != col:
                    _fail(path, lineno, f"column {j + 1} is not a number: {cell!r}")
                out[i, j], text = np.nan, True
    return out, text


def load_csv(path, label="first", header=None, delimiter=",", dtype=np.float64, info=None):
    """Read a CSV (optionally .gz) of numeric features into (X, y); header=None detects a header row.

    label picks the target column: "first", "last", "auto" (the header column named label,
    target, y or class; the first column of a file without a header), a header name or an int
    index; None reads every column as a feature (y is None). Labels come back int64 when all
    are whole numbers (below 2**31 in magnitude), strings when any is not a number (class
    names), else float64. ``info``, a dict, receives the header ``names`` and the label
    ``column`` and ``name`` chosen. Files over MAX_BYTES of text or MAX_CELLS values are refused
    before they are read.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
    >>> _ = open(path, "w").write("a,b,label\\n0.5,1,0\\n2,3,1\\n")
    >>> X, y = load_csv(path, label="label")
    >>> X.tolist(), y.tolist()
    ([[0.5, 1.0], [2.0, 3.0]], [0, 1])
    """
    path, lines = _lines(path)
    return _parse_csv(path, lines, label, header, delimiter, dtype, info)


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
    _check_cells(path, len(lines), n_features)
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
    return X, _labels(y, lambda i: f"{path}: line {linenos[i]}")


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
        info = kw.pop("info", None)
        if info is not None:
            info.update(names=None, column=0, name=None, sparse=True)
        return _parse_sparse(path, lines, **kw)
    if "delimiter" not in kw and "\t" in lines[0][1] and "," not in lines[0][1]:
        kw["delimiter"] = "\t"
    kw = {"label": "first", "header": None, "delimiter": ",", "dtype": np.float64, "info": None, **kw}
    return _parse_csv(path, lines, **kw)


def csv_columns(path):
    """(number of columns, header names or None) of a CSV file, from its first line; None for a
    sparse 'label index:value' file. Lets a caller decide which column is which before reading.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
    >>> _ = open(path, "w").write("a,b,label\\n0.5,1,0\\n")
    >>> csv_columns(path)
    (3, ['a', 'b', 'label'])
    """
    path, lines = _lines(path)
    if not path.name.lower().endswith((".csv", ".csv.gz")) and _looks_sparse(lines):
        return None
    line = lines[0][1]
    first = next(csv.reader([line], delimiter="\t" if "\t" in line and "," not in line else ","))
    header = not all(_is_number(cell) for cell in first)
    return len(first), ([cell.strip() for cell in first] if header else None)


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
