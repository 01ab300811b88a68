"""Safetensors files written and read with numpy alone, and crash-safe atomic writes.

The reader trusts nothing in the file. It opens only regular files (checked on the open file
descriptor, so a FIFO or a link to /dev/zero is refused without blocking or reading), bounds
the header (:data:`MAX_HEADER_BYTES`) and its JSON nesting (:data:`MAX_NESTING`), checks every
tensor's dtype, shape and offsets against each other and against the file's size before
reading any data, refuses duplicate keys, and verifies the SHA-256 checksum that the writer
stores in the metadata (``chainrule.sha256``: names, dtypes, shapes and bytes of the tensors
and the other metadata). Files without a checksum (written before it existed, or by other
tools) still load. tests/cli/test_fuzz.py checks that it accepts nothing the ``safetensors``
package (a Rust parser its maintainers fuzz) refuses, and reads the same tensors where both accept.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import struct
import uuid
from pathlib import Path

import numpy as np

from chainrule.core.errors import ModelFileError

__all__ = [
    "ModelFileError", "save_safetensors", "load_safetensors",
    "atomic_write", "atomic_open", "save_json_atomic", "MAX_HEADER_BYTES", "MAX_NESTING",
]

# The JSON header of a safetensors file: 100 MB is the Rust reader's limit; ours is smaller, as
# a header holds a few hundred bytes per tensor plus the model's config.
MAX_HEADER_BYTES = 16 * 2**20
# Brackets deep in the header or in a JSON metadata string (Python's json recurses per level).
MAX_NESTING = 64
CHECKSUM = "chainrule.sha256"

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
    _remove_stale_temporaries(path)
    # Same folder as the target so os.replace is a rename within one file system; the pid in
    # the name tells a later save whether the writer is still alive.
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
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


def _remove_stale_temporaries(path):
    """Delete the temporaries of earlier saves of ``path`` whose process is gone (killed mid-save).

    A temporary is ``.NAME.PID.HEX.tmp``; one whose PID is alive on this machine is another save
    in progress and is left alone (as is, rarely, a stale one whose PID was reused; the next
    save after that process ends removes it). Temporaries of other targets are never touched.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)\.[0-9a-f]{12}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid):
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process, or a pid this system cannot have: keep it
    return True


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
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("metadata must map str to str")
    if CHECKSUM in metadata:
        raise ValueError(f"metadata key {CHECKSUM!r} is reserved for the checksum")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        arrays[name] = a = np.asarray(value)
        if (a.dtype.kind, a.dtype.itemsize) not in _NAMES:
            raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no safetensors equivalent")
    # Largest items first, as the reference writer does, so every tensor is aligned in the file.
    entries = {}
    for name in sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n)):
        a = arrays[name]
        code = _NAMES[a.dtype.kind, a.dtype.itemsize]
        data = np.ascontiguousarray(a, dtype=DTYPES[code]).tobytes()
        entries[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {**metadata, CHECKSUM: _checksum(entries, b"".join(chunks), metadata)}
    header.update(entries)
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    atomic_write(path, b"".join([struct.pack("<Q", len(raw)), raw, *chunks]))


def _checksum(entries, data, metadata):
    """SHA-256 over each tensor's name, dtype, shape and bytes (in name order) and the metadata,
    every field length-prefixed so that no two different files hash alike."""
    h = hashlib.sha256()

    def field(b):
        h.update(struct.pack("<Q", len(b)))
        h.update(b)

    for name in sorted(entries):
        entry = entries[name]
        begin, end = entry["data_offsets"]
        field(name.encode("utf-8"))
        field(entry["dtype"].encode("ascii"))
        field(struct.pack(f"<{len(entry['shape'])}Q", *entry["shape"]))
        h.update(struct.pack("<Q", end - begin))
        h.update(memoryview(data)[begin:end])
    for key in sorted(metadata):
        field(key.encode("utf-8"))
        field(metadata[key].encode("utf-8"))
    return h.hexdigest()


def _check_entry(path, name, entry):
    def bad(problem):
        raise ModelFileError(f"{path}: tensor {name!r}: {problem}")

    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        bad("header entry must have exactly 'dtype', 'shape' and 'data_offsets'")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
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

    Raises ModelFileError for anything but a regular, well-formed, intact file (see the module
    docstring for the checks and limits). Never unpickles anything.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "b.safetensors")
    >>> save_safetensors(path, {"b": np.zeros(3)})
    >>> load_safetensors(path)[0]["b"].shape
    (3,)
    """
    path = Path(path)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ModelFileError(f"{path}: file too short ({size} bytes) to hold a safetensors header")
        (n,) = struct.unpack("<Q", _read_exactly(f, 8, path))
        if n > size - 8:
            raise ModelFileError(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(f"{path}: header of {n} bytes is over the limit of {MAX_HEADER_BYTES} bytes")
        header = _parse_json(_read_exactly(f, n, path), path, "header")
        if not isinstance(header, dict):
            raise ModelFileError(f"{path}: header must be a JSON object, got {type(header).__name__}")
        metadata = header.pop("__metadata__", {})
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ModelFileError(f"{path}: __metadata__ must map str to str")
        for name, entry in header.items():
            _check_entry(path, name, entry)
        data_size = size - 8 - n
        # Tensors must tile the data section exactly: no gaps, no overlaps, nothing left over;
        # checked against the file's size before any data is read.
        end = 0
        for name in sorted(header, key=lambda k: tuple(header[k]["data_offsets"])):
            begin, stop = header[name]["data_offsets"]
            if begin != end:
                problem = "overlaps the previous tensor" if begin < end else "leaves a gap before it"
                raise ModelFileError(f"{path}: tensor {name!r}: data_offsets {[begin, stop]} {problem}")
            if stop > data_size:
                raise ModelFileError(f"{path}: truncated data: tensor {name!r} ends at byte {stop} "
                                     f"but the data section has only {data_size} bytes")
            end = stop
        if end != data_size:
            raise ModelFileError(f"{path}: {data_size - end} bytes after the last tensor "
                                 "are not described by the header")
        data = memoryview(_read_exactly(f, data_size, path))
    stored = metadata.pop(CHECKSUM, None)
    if stored is not None and stored != _checksum(header, data, metadata):
        raise ModelFileError(f"{path}: checksum mismatch: the file is corrupted (its tensors or metadata "
                             "changed after it was written)")
    tensors = {}
    for name, entry in header.items():
        begin, stop = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        array = np.frombuffer(data[begin:stop], dtype=dtype).reshape(entry["shape"])
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata


@contextlib.contextmanager
def _open_regular(path):
    """Open ``path`` for reading only if it is a regular file, judged on the open descriptor
    (no race with a swap after a check). O_NONBLOCK keeps a FIFO from blocking the open."""
    # A missing or unreadable file raises FileNotFoundError / PermissionError, as open() does.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
            raise ModelFileError(f"{path}: is {kind}; a model file must be a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def _read_exactly(f, n, path):
    try:
        raw = f.read(n)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) != n:  # the file shrank while being read
        raise ModelFileError(f"{path}: truncated: expected {n} more bytes, read {len(raw)}")
    return raw


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def _nesting(raw):
    """The deepest bracket nesting of JSON text, strings skipped (linear, no recursion)."""
    depth = deepest = 0
    for b in _BRACKETS.findall(_STRING.sub(b"", raw)):
        depth += 1 if b in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _unique(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"key {twice!r} appears twice")
    return dict(pairs)


def _parse_json(raw, path, what):
    """JSON from bytes, bounded in nesting, duplicate keys refused; ModelFileError otherwise."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    depth = _nesting(raw)
    if depth > MAX_NESTING:
        raise ModelFileError(f"{path}: {what} is nested {depth} levels deep (limit {MAX_NESTING})")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFileError(f"{path}: {what} is not valid JSON ({e})") from None
