"""Tests for the CSV, sparse and bundled-digits loaders and their error messages."""
import doctest
import gzip
import importlib.util
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import DataError, load_csv, load_digits, load_file, load_sparse, loaders


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def expect_error(match, fn, path, *args, **kw):
    """The loader raises DataError whose message names the file and matches `match`."""
    with pytest.raises(DataError, match=match) as info:
        fn(path, *args, **kw)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ValueError)


# --- CSV --------------------------------------------------------------------------------

def test_csv_label_first_no_header(tmp_path):
    X, y = load_csv(write(tmp_path, "a.csv", "1,0.5,2\n0,3,4\n"))
    assert X.tolist() == [[0.5, 2.0], [3.0, 4.0]] and X.dtype == np.float64
    assert y.tolist() == [1, 0] and y.dtype == np.int64


@pytest.mark.parametrize("label, X_expected, y_expected", [
    ("first", [[2, 3], [5, 6]], [1, 4]),
    ("last", [[1, 2], [4, 5]], [3, 6]),
    ("b", [[1, 3], [4, 6]], [2, 5]),
    (1, [[1, 3], [4, 6]], [2, 5]),
    (-1, [[1, 2], [4, 5]], [3, 6]),
])
def test_csv_label_choices(tmp_path, label, X_expected, y_expected):
    X, y = load_csv(write(tmp_path, "h.csv", "a,b,c\n1,2,3\n4,5,6\n"), label=label)
    assert X.tolist() == X_expected and y.tolist() == y_expected


def test_csv_header_autodetect_and_explicit(tmp_path):
    path = write(tmp_path, "h.csv", '"x","y"\n1,2\n')
    assert load_csv(path)[0].tolist() == [[2.0]]
    numeric = write(tmp_path, "n.csv", "7,8\n1,2\n")
    assert load_csv(numeric)[1].tolist() == [7, 1]
    assert load_csv(numeric, header=True)[1].tolist() == [1]
    # without the header, "x" is a class name in the label column and "y" a feature that is no number
    expect_error(r"line 1: column 2 is not a number: 'y'", load_csv, path, header=False)


def test_csv_float_labels_are_regression(tmp_path):
    X, y = load_csv(write(tmp_path, "r.csv", "1,0.5\n2,1.0\n"), label="last")
    assert y.dtype == np.float64 and y.tolist() == [0.5, 1.0]
    _, y = load_csv(write(tmp_path, "i.csv", "1,2.0\n2,-1.0\n"), label="last")
    assert y.dtype == np.int64 and y.tolist() == [2, -1]


def test_csv_dtype_delimiter_gzip_crlf_blank_lines(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"1;2;3\r\n\r\n4;5;6\r\n\r\n"))
    X, y = load_csv(path, delimiter=";", dtype=np.float32)
    assert X.dtype == np.float32 and X.tolist() == [[2, 3], [5, 6]] and y.tolist() == [1, 4]


def test_csv_missing_file(tmp_path):
    expect_error("no such file", load_csv, tmp_path / "nope.csv")


def test_csv_directory(tmp_path):
    expect_error("not a regular file", load_csv, tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_csv_empty_file(tmp_path, text):
    expect_error("file is empty", load_csv, write(tmp_path, "e.csv", text))


def test_csv_header_only(tmp_path):
    expect_error("no data rows after the header", load_csv, write(tmp_path, "h.csv", "a,b\n"))


def test_csv_ragged_rows_name_the_line(tmp_path):
    expect_error(r"line 4: expected 3 columns, found 2", load_csv,
                 write(tmp_path, "r.csv", "1,2,3\n\n4,5,6\n7,8\n"))


@pytest.mark.parametrize("cell", ["abc", "", "1.2.3"])
def test_csv_non_numeric_cell(tmp_path, cell):
    path = write(tmp_path, "n.csv", f"1,2,3\n4,{cell},6\n")
    expect_error(re.escape(f"line 2: column 2 is not a number: {cell!r}"), load_csv, path)


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf"])
def test_csv_nan_inf(tmp_path, cell):
    path = write(tmp_path, "n.csv", f"1,2,3\n4,5,6\n7,8,{cell}\n")
    expect_error(rf"line 3: column 3 is {cell} \(NaN/inf not allowed\)", load_csv, path)


def test_csv_label_name_without_header(tmp_path):
    expect_error("label column 'c' needs a header row", load_csv,
                 write(tmp_path, "a.csv", "1,2\n"), label="c")


def test_csv_unknown_label_name(tmp_path):
    expect_error("no column named 'z'; columns: a, b", load_csv,
                 write(tmp_path, "a.csv", "a,b\n1,2\n"), label="z")


def test_csv_label_index_out_of_range(tmp_path):
    expect_error("label column 5 out of range for 2 columns", load_csv,
                 write(tmp_path, "a.csv", "1,2\n"), label=5)


def test_csv_bad_label_argument(tmp_path):
    with pytest.raises(ValueError, match="label must be 'first', 'last'"):
        load_csv(write(tmp_path, "a.csv", "1,2\n"), label=1.5)


def test_csv_single_column_hints_at_delimiter(tmp_path):
    expect_error(r"line 1: need a label and at least one feature column, found 1 column\(s\) "
                 r"\(wrong delimiter ','\?\)", load_csv, write(tmp_path, "a.csv", "1;2\n3;4\n"))


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"1,2\n\xff\xfe,3\n")
    expect_error("not UTF-8 text", load_csv, path)


# --- sparse -----------------------------------------------------------------------------

def test_sparse_basic(tmp_path):
    path = write(tmp_path, "s.tsv", "1\t0:1\t3:2.5\t\n\n0\t2:1\r\n1\n")
    X, y = load_sparse(path, n_features=4)
    assert X.tolist() == [[1, 0, 0, 2.5], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert X.dtype == np.float64 and y.dtype == np.int64 and y.tolist() == [1, 0, 1]


def test_sparse_float_labels_and_dtype(tmp_path):
    X, y = load_sparse(write(tmp_path, "s.tsv", "0.25\t1:1\n"), n_features=2, dtype=np.float32)
    assert y.dtype == np.float64 and y.tolist() == [0.25]
    assert X.dtype == np.float32 and X.tolist() == [[0, 1]]


def test_sparse_index_out_of_range(tmp_path):
    path = write(tmp_path, "s.tsv", "1\t0:1\t2:1\n0\t3:1\n")
    assert load_sparse(path, n_features=4)[0].shape == (2, 4)
    expect_error("line 2: index 3 out of range for n_features=3", load_sparse, path, 3)


def test_sparse_negative_index(tmp_path):
    expect_error("line 1: index -1 out of range for n_features=3", load_sparse,
                 write(tmp_path, "s.tsv", "1\t-1:1\n"), 3)


@pytest.mark.parametrize("token", ["3", "3:1:2", "a:1", "3:", ":1", "1.5:1", "3:x"])
def test_sparse_malformed_pair(tmp_path, token):
    path = write(tmp_path, "s.tsv", f"1\t0:1\n0\t1:1\t{token}\t2:1\n")
    expect_error(re.escape(f"line 2: feature 2 is not 'index:value': {token!r}"), load_sparse, path, 5)


def test_sparse_non_numeric_label(tmp_path):
    expect_error(re.escape("line 1: label is not a number: 'pos'"), load_sparse,
                 write(tmp_path, "s.tsv", "pos\t0:1\n"), 2)


@pytest.mark.parametrize("line, match", [
    ("1\t0:nan\n", r"line 1: index 0 has value nan \(NaN/inf not allowed\)"),
    ("1\t0:1\t1:-inf\n", r"line 1: index 1 has value -inf \(NaN/inf not allowed\)"),
    ("inf\t0:1\n", r"line 1: label is inf \(NaN/inf not allowed\)"),
])
def test_sparse_nan_inf(tmp_path, line, match):
    expect_error(match, load_sparse, write(tmp_path, "s.tsv", line), 2)


def test_sparse_repeated_index(tmp_path):
    expect_error("line 1: index 1 appears more than once", load_sparse,
                 write(tmp_path, "s.tsv", "1\t1:1\t0:1\t1:1\n"), 2)


def test_sparse_missing_and_empty(tmp_path):
    expect_error("no such file", load_sparse, tmp_path / "none.tsv", 3)
    expect_error("file is empty", load_sparse, write(tmp_path, "e.tsv", ""), 3)


@pytest.mark.parametrize("n_features", [0, -1, 2.5, True])
def test_sparse_bad_n_features(tmp_path, n_features):
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        load_sparse(write(tmp_path, "s.tsv", "1\t0:1\n"), n_features)


# --- load_file --------------------------------------------------------------------------

def test_load_file_picks_the_format(tmp_path):
    X, y = load_file(write(tmp_path, "a.csv", "1,2,3\n"))
    assert X.tolist() == [[2, 3]] and y.tolist() == [1]
    X, y = load_file(write(tmp_path, "b.txt", "1\n0\t1:1\n"), n_features=2)
    assert X.tolist() == [[0, 0], [0, 1]] and y.tolist() == [1, 0]
    X, y = load_file(write(tmp_path, "c.tsv", "x\ty\n1\t2\n"), label="y")
    assert X.tolist() == [[1]] and y.tolist() == [2]


def test_load_file_sparse_needs_n_features(tmp_path):
    expect_error(r"looks like a sparse 'label index:value' file; pass n_features=\.\.\.",
                 load_file, write(tmp_path, "s.tsv", "1\t0:1\n"))


def test_load_file_errors_pass_through(tmp_path):
    expect_error("no such file", load_file, tmp_path / "x.csv")
    expect_error("line 2: expected 2 columns", load_file, write(tmp_path, "r.csv", "1,2\n3\n"))


# --- bundled digits ---------------------------------------------------------------------

def test_digits_shape_dtype_range():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and np.array_equal(X, np.round(X))
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert X[0, :8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0] and y[0] == 0


def test_digits_file_is_scikit_learns_copy():
    # Compare with the file in the installed wheel; importing sklearn itself takes seconds.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-learn is not installed")
    theirs = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    ours = resources.files("chainrule.data").joinpath("digits.csv.gz").read_bytes()
    assert gzip.decompress(ours) == gzip.decompress(theirs.read_bytes())


def test_digits_files_are_packaged():
    folder = resources.files("chainrule.data")
    text = folder.joinpath("DIGITS.md").read_text()
    for needle in ("Alpaydin", "Kaynak", "CC BY 4.0", "scikit-learn", "BSD-3"):
        assert needle in text
    assert folder.joinpath("digits.csv.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_digits_load_without_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from chainrule.data import load_digits\n"
            "X, y = load_digits(); print(X.shape, 'sklearn' in sys.modules and sys.modules['sklearn'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1797, 64) None"


def test_doctests():
    result = doctest.testmod(loaders)
    assert result.attempted > 0 and result.failed == 0


def test_broken_gzip(tmp_path):
    path = tmp_path / "b.csv.gz"
    whole = gzip.compress(b"1,2\n" * 100)
    path.write_bytes(whole[: len(whole) // 2])
    expect_error("broken gzip data", load_csv, path)


# --- label columns by name, text labels, huge labels, bounded reads ---------------------

def test_auto_label_by_header_name(tmp_path):
    info = {}
    X, y = load_csv(write(tmp_path, "h.csv", "a,b,Target\n1,2,0\n3,4,1\n"), label="auto", info=info)
    assert X.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    assert info["column"] == 2 and info["name"] == "Target"
    assert load_csv(write(tmp_path, "n.csv", "7,8\n1,2\n"), label="auto")[1].tolist() == [7, 1]
    expect_error(r"cannot tell the label column: the header has no column named label, target, y, class",
                 load_csv, write(tmp_path, "x.csv", "a,b\n1,2\n"), label="auto")
    expect_error("several label-like columns", load_csv, write(tmp_path, "two.csv", "y,class\n1,2\n"), label="auto")


def test_text_labels_stay_text(tmp_path):
    X, y = load_csv(write(tmp_path, "t.csv", "sepal,species\n5.1, setosa\n7.0,versicolor\n"), label="species")
    assert X.tolist() == [[5.1], [7.0]] and y.tolist() == ["setosa", "versicolor"]
    expect_error(re.escape("line 3: column 1 is not a number: 'x'"), load_csv,
                 write(tmp_path, "f.csv", "sepal,species\n5.1,setosa\nx,versicolor\n"), label="species")


@pytest.mark.parametrize("label", ["1e20", "-3e9", "9223372036854775808"])
def test_whole_numbers_too_large_for_classes(tmp_path, label):
    path = write(tmp_path, "big.csv", f"0,1\n{label},2\n")
    expect_error(r"column 1, line 2: label .* is a whole number too large to be a class label", load_csv, path)


def test_gzip_bomb_refused_by_size_in_bounded_memory(tmp_path, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(loaders, "MAX_BYTES", 2**20)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(b"0,0,0,0,0,0,0,0\n" * (4 * 2**20), compresslevel=9))  # 64 MiB of text
    assert path.stat().st_size < 2**20 // 4
    tracemalloc.start()
    try:
        expect_error(r"the compressed file expands to more than 1,048,576 bytes of text", load_csv, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the check fired on the size, long before 64 MiB were held


def test_large_plain_file_and_too_many_cells_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "MAX_BYTES", 1000)
    expect_error("the file holds more than 1,000 bytes", load_csv, write(tmp_path, "a.csv", "1,2\n" * 300))
    monkeypatch.setattr(loaders, "MAX_BYTES", 2**20)
    monkeypatch.setattr(loaders, "MAX_CELLS", 100)
    expect_error(r"60 rows x 2 columns = 120 values, more than the limit of 100", load_csv,
                 write(tmp_path, "b.csv", "1,2\n" * 60))
    expect_error(r"2 rows x 1,000,000,000 columns", load_sparse, write(tmp_path, "s.tsv", "1\t0:1\n0\t1:1\n"),
                 n_features=10**9)


def test_many_rows_in_chunks(tmp_path):
    rows = 3 * loaders._CHUNK + 7
    text = "".join(f"{i % 3},{i},{-i}\n" for i in range(rows))
    X, y = load_csv(write(tmp_path, "many.csv", text))
    assert X.shape == (rows, 2) and X[-1].tolist() == [rows - 1, -(rows - 1)] and y[-1] == (rows - 1) % 3
