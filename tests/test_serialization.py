"""Tests for safetensors I/O (checked against the real package) and atomic writes."""
import doctest
import json
import os
import struct
import sys

import numpy as np
import pytest

from chainrule import serialization
from chainrule.serialization import (
    ModelFileError, atomic_open, atomic_write, load_safetensors, save_json_atomic, save_safetensors,
)


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "layer1.W": rng.normal(size=(4, 3)).astype(np.float32),
        "layer1.b": rng.normal(size=3),
        "steps": np.arange(6, dtype=np.int64).reshape(2, 3),
        "counts": np.array([-1, 2], dtype=np.int32),
        "pixels": np.array([0, 255, 7], dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "half": np.array([0.5, -2.0], dtype=np.float16),
        "scalar": np.array(3.25),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(2, 3))),
        "big_endian": np.arange(3, dtype=">i8"),
    }


def assert_same(loaded, expected):
    assert set(loaded) == set(expected)
    for name, value in expected.items():
        assert loaded[name].shape == value.shape, name
        assert loaded[name].dtype == value.dtype.newbyteorder("="), name
        assert np.array_equal(loaded[name], value), name


def header_of(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, raw[8:8 + n], raw[8 + n:]


# --- our own round trip and the file layout ---------------------------------------------

def test_round_trip(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(path, sample_tensors(), {"epoch": "3", "note": "héllo"})
    tensors, metadata = load_safetensors(path)
    assert_same(tensors, sample_tensors())
    assert metadata == {"epoch": "3", "note": "héllo"}
    assert all(t.flags.writeable and t.flags.c_contiguous for t in tensors.values())


def test_file_layout(tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, {"b": np.zeros(3, np.float32), "a": np.arange(2)}, {"k": "v"})
    n, header, data = header_of(path)
    assert n % 8 == 0 and header.startswith(b"{") and header.rstrip(b" ").endswith(b"}")
    parsed = json.loads(header)
    checksum = parsed["__metadata__"].pop("chainrule.sha256")
    assert parsed["__metadata__"] == {"k": "v"} and len(checksum) == 64
    assert parsed["a"] == {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}
    assert parsed["b"] == {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}
    assert data == np.arange(2, dtype="<i8").tobytes() + np.zeros(3, "<f4").tobytes()


def test_no_metadata_and_no_tensors(tmp_path):
    path = tmp_path / "empty.safetensors"
    save_safetensors(path, {})
    assert load_safetensors(path) == ({}, {})
    assert list(json.loads(header_of(path)[1])["__metadata__"]) == ["chainrule.sha256"]


@pytest.mark.parametrize("tensors, metadata, error, match", [
    ({"x": np.zeros(2, np.complex128)}, None, TypeError, "dtype complex128 has no safetensors equivalent"),
    ({"x": np.array(["a"])}, None, TypeError, "has no safetensors equivalent"),
    ({"x": np.array([{}], dtype=object)}, None, TypeError, "has no safetensors equivalent"),
    ({"__metadata__": np.zeros(1)}, None, ValueError, "invalid tensor name '__metadata__'"),
    ({"x": np.zeros(1)}, {"epoch": 3}, TypeError, "metadata must map str to str"),
])
def test_save_rejects(tmp_path, tensors, metadata, error, match):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(error, match=match):
        save_safetensors(path, tensors, metadata)
    assert not path.exists()


# --- the reference implementation agrees ------------------------------------------------

def test_reference_package_reads_our_files(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    path = tmp_path / "ours.safetensors"
    save_safetensors(path, sample_tensors(), {"framework": "chainrule", "epoch": "7"})
    assert_same(st_numpy.load_file(path), sample_tensors())
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
        assert meta.pop("chainrule.sha256") and meta == {"framework": "chainrule", "epoch": "7"}


def test_we_read_reference_files(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    expected = {k: np.ascontiguousarray(v) for k, v in sample_tensors().items()
                if k not in ("scalar", "big_endian")}
    expected["complex"] = np.array([1 + 2j, -3j], dtype=np.complex64)
    path = tmp_path / "theirs.safetensors"
    st_numpy.save_file(expected, path, metadata={"source": "safetensors"})
    tensors, metadata = load_safetensors(path)
    assert_same(tensors, expected)
    assert metadata == {"source": "safetensors"}
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(st_numpy.save({"w": np.eye(3)}))
    assert_same(load_safetensors(raw)[0], {"w": np.eye(3)})


# --- corrupt files ----------------------------------------------------------------------

def craft(tmp_path, header, data=b"", length=None):
    """A file with a hand-made header (dict or raw bytes) and data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def f32(shape, begin):
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, begin + 4 * int(np.prod(shape))]}


def expect_corrupt(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load_safetensors(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("content", [b"", b"\x08\x00\x00"])
def test_file_too_short(tmp_path, content):
    path = tmp_path / "short.safetensors"
    path.write_bytes(content)
    expect_corrupt(path, rf"file too short \({len(content)} bytes\)")


def test_header_length_beyond_file(tmp_path):
    expect_corrupt(craft(tmp_path, {}, length=10_000),
                   r"header length 10000 runs past the end of the file \(16 bytes\)")
    expect_corrupt(craft(tmp_path, {}, length=2**64 - 1), "header length 18446744073709551615 runs past")


@pytest.mark.parametrize("header", [b"{not json", b'{"a": 1', b"\xff\xfe{}"])
def test_header_not_json(tmp_path, header):
    expect_corrupt(craft(tmp_path, header), "header is not valid JSON")


def test_header_not_an_object(tmp_path):
    expect_corrupt(craft(tmp_path, b"[1, 2]"), "header must be a JSON object, got list")


@pytest.mark.parametrize("dtype", ["BF16", "F8_E4M3", "float32", 7])
def test_unknown_dtype(tmp_path, dtype):
    header = {"x": {"dtype": dtype, "shape": [1], "data_offsets": [0, 2]}}
    expect_corrupt(craft(tmp_path, header, b"\0\0"), rf"tensor 'x': unknown dtype {dtype!r}")


@pytest.mark.parametrize("entry, match", [
    ({"dtype": "F32", "shape": [1]}, "header entry must have exactly 'dtype', 'shape' and 'data_offsets'"),
    ([1, 2], "header entry must have exactly"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
     r"shape must be a list of non-negative ints, got \[-1\]"),
    ({"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}, "shape must be a list of non-negative ints"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, r"data_offsets must be \[begin, end\]"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0]}, r"data_offsets must be \[begin, end\]"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]},
     r"data_offsets \[0, 4\] span 4 bytes but shape \[2\] of F32 needs 8"),
])
def test_bad_entries(tmp_path, entry, match):
    expect_corrupt(craft(tmp_path, {"x": entry}, b"\0" * 8), rf"tensor 'x': {match}")


def test_overlapping_offsets(tmp_path):
    header = {"a": f32([2], 0), "b": f32([2], 4)}
    expect_corrupt(craft(tmp_path, header, b"\0" * 12),
                   r"tensor 'b': data_offsets \[4, 12\] overlaps the previous tensor")


def test_gap_between_tensors(tmp_path):
    header = {"a": f32([1], 0), "b": f32([1], 8)}
    expect_corrupt(craft(tmp_path, header, b"\0" * 12),
                   r"tensor 'b': data_offsets \[8, 12\] leaves a gap before it")


def test_offsets_out_of_range_and_truncated_data(tmp_path):
    expect_corrupt(craft(tmp_path, {"a": f32([4], 0)}, b"\0" * 10),
                   r"truncated data: tensor 'a' ends at byte 16 but the data section has only 10 bytes")
    path = tmp_path / "cut.safetensors"
    save_safetensors(path, sample_tensors())
    path.write_bytes(path.read_bytes()[:-5])
    expect_corrupt(path, "truncated data")


def test_trailing_bytes(tmp_path):
    expect_corrupt(craft(tmp_path, {"a": f32([1], 0)}, b"\0" * 7),
                   "3 bytes after the last tensor are not described")


@pytest.mark.parametrize("metadata", [{"epoch": 3}, ["x"], "text"])
def test_bad_metadata(tmp_path, metadata):
    expect_corrupt(craft(tmp_path, {"__metadata__": metadata}), "__metadata__ must map str to str")


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_safetensors(tmp_path / "nothing.safetensors")


# --- atomic writes ----------------------------------------------------------------------

def only_file(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, b"one")
    atomic_write(str(path), b"two")
    assert path.read_bytes() == b"two"
    assert only_file(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_crash_keeps_old_file_and_removes_temp(tmp_path, monkeypatch, broken):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old contents")

    def crash(*args):
        raise OSError("simulated crash")

    monkeypatch.setattr(serialization.os, broken, crash)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write(path, b"new contents that never land")
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert only_file(tmp_path) == ["model.bin"]


def test_crash_mid_write_in_context_manager(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path, "w") as f:
            f.write("half of the new")
            f.flush()
            assert len(only_file(tmp_path)) == 2  # the temp file really exists meanwhile
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert only_file(tmp_path) == ["log.txt"]


def test_crash_while_saving_model_keeps_old_model(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, {"w": np.ones(3)})
    real_open = open

    class FailingFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError("No space left on device")

    monkeypatch.setattr("builtins.open", lambda *a, **k: FailingFile(real_open(*a, **k)))
    with pytest.raises(OSError, match="No space left"):
        save_safetensors(path, {"w": np.zeros(1000)})
    monkeypatch.undo()
    assert np.array_equal(load_safetensors(path)[0]["w"], np.ones(3))
    assert only_file(tmp_path) == ["m.safetensors"]


def test_missing_folder(tmp_path):
    path = tmp_path / "no" / "such" / "f.bin"
    with pytest.raises(FileNotFoundError, match="cannot write .*f.bin: folder .*such does not exist"):
        atomic_write(path, b"x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_safetensors(path, {})


def test_unwritable_folder_simulated(tmp_path, monkeypatch):
    def deny(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(serialization.os, "open", deny)
    expected = r"cannot write .*f.bin: folder .* is not writable \(Permission denied\)"
    with pytest.raises(PermissionError, match=expected):
        atomic_write(tmp_path / "f.bin", b"x")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="is not writable"):
            atomic_write(folder / "f.bin", b"x")
    finally:
        folder.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640


def test_atomic_open_rejects_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_open(tmp_path / "f", "r"):
            pass


def test_save_json_atomic(tmp_path):
    path = tmp_path / "metrics.json"
    save_json_atomic(path, {"loss": np.float32(0.25), "acc": [np.int64(1)], "W": np.eye(2), "ok": True})
    assert json.loads(path.read_text()) == {"loss": 0.25, "acc": [1], "W": [[1, 0], [0, 1]], "ok": True}
    assert path.read_text().endswith("}\n")
    with pytest.raises(TypeError, match="cannot store object in JSON"):
        save_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text())["loss"] == 0.25
    assert only_file(tmp_path) == ["metrics.json"]


def test_doctests():
    result = doctest.testmod(serialization)
    assert result.attempted > 0 and result.failed == 0
