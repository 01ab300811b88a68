"""Safetensors files written and read with numpy alone, and crash-safe atomic writes."""
from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import uuid
from pathlib import Path

import numpy as np

__all__ = [
    "ModelFileError", "save_safetensors", "load_safetensors",
    "atomic_write", "atomic_open", "save_json_atomic",
]

# safetensors dtype names -> numpy dtypes (always little-endian on disk).
DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items()}


class ModelFileError(ValueError):
    """A model file that is not valid safetensors; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside `path`; on a clean exit it replaces `path`, else it vanishes.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_open(path, "w") as f:
    ...     _ = f.write("hello")
    >>> open(path).read()
    'hello'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    # Same folder as the target so os.replace is a rename within one file system.
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        # 0o666 lets the umask decide permissions, as for a plain open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except PermissionError as e:
        raise PermissionError(f"cannot write {path}: folder {folder} is not writable ({e.strerror})") from e
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with open(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    # Makes the rename itself durable on POSIX; Windows cannot open folders, which is fine.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, data: bytes):
    """Write bytes to `path` so readers see the old file or the new one, never a partial one.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "blob.bin")
    >>> atomic_write(path, b"abc")
    >>> open(path, "rb").read()
    b'abc'
    """
    with atomic_open(path, "wb") as f:
        f.write(data)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def save_json_atomic(path, obj):
    """Write `obj` as indented JSON atomically; numpy scalars and arrays become numbers and lists.

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "metrics.json")
    >>> save_json_atomic(path, {"loss": np.float32(0.5), "epoch": 3})
    >>> json.load(open(path))
    {'loss': 0.5, 'epoch': 3}
    """
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    atomic_write(path, text.encode("utf-8"))


def save_safetensors(path, tensors, metadata=None):
    """Save a dict of numpy arrays (and optional str->str metadata) as a .safetensors file.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save_safetensors(path, {"W": np.eye(2, dtype=np.float32)}, {"epoch": "3"})
    >>> tensors, meta = load_safetensors(path)
    >>> tensors["W"].tolist(), meta
    ([[1.0, 0.0], [0.0, 1.0]], {'epoch': '3'})
    """
    header, chunks, offset = {}, [], 0
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        arrays[name] = a = np.asarray(value)
        if (a.dtype.kind, a.dtype.itemsize) not in _NAMES:
            raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no safetensors equivalent")
    # Largest items first, as the reference writer does, so every tensor is aligned in the file.
    for name in sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n)):
        a = arrays[name]
        code = _NAMES[a.dtype.kind, a.dtype.itemsize]
        data = np.ascontiguousarray(a, dtype=DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    atomic_write(path, b"".join([struct.pack("<Q", len(raw)), raw, *chunks]))


def _check_entry(path, name, entry):
    def bad(problem):
        raise ModelFileError(f"{path}: tensor {name!r}: {problem}")

    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        bad("header entry must have exactly 'dtype', 'shape' and 'data_offsets'")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        bad(f"unknown dtype {dtype!r} (supported: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        bad(f"shape must be a list of non-negative ints, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
        bad(f"data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}")
    expected = DTYPES[dtype].itemsize * math.prod(shape)
    if offsets[1] - offsets[0] != expected:
        bad(f"data_offsets {offsets} span {offsets[1] - offsets[0]} bytes but shape {shape} "
            f"of {dtype} needs {expected}")


def load_safetensors(path):
    """Load a .safetensors file into ({name: array}, metadata), checking every header field.

    Raises ModelFileError for a corrupt or truncated file. Never unpickles anything.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "b.safetensors")
    >>> save_safetensors(path, {"b": np.zeros(3)})
    >>> load_safetensors(path)[0]["b"].shape
    (3,)
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ModelFileError(f"{path}: file too short ({len(raw)} bytes) to hold a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ModelFileError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ModelFileError(f"{path}: __metadata__ must map str to str")
    for name, entry in header.items():
        _check_entry(path, name, entry)
    data = memoryview(raw)[8 + n:]
    # Tensors must tile the data section exactly: no gaps, no overlaps, nothing left over.
    end = 0
    for name in sorted(header, key=lambda k: tuple(header[k]["data_offsets"])):
        begin, stop = header[name]["data_offsets"]
        if begin != end:
            problem = "overlaps the previous tensor" if begin < end else "leaves a gap before it"
            raise ModelFileError(f"{path}: tensor {name!r}: data_offsets {[begin, stop]} {problem}")
        if stop > len(data):
            raise ModelFileError(f"{path}: truncated data: tensor {name!r} ends at byte {stop} "
                                 f"but the data section has only {len(data)} bytes")
        end = stop
    if end != len(data):
        raise ModelFileError(f"{path}: {len(data) - end} bytes after the last tensor "
                             "are not described by the header")
    tensors = {}
    for name, entry in header.items():
        begin, stop = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        array = np.frombuffer(data[begin:stop], dtype=dtype).reshape(entry["shape"])
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata
