"""Models and checkpoints on disk: round trips, the real safetensors format, bad files, atomic writes."""
import json
import os
import struct

import numpy as np
import pytest

import chainrule as cr
import chainrule.serialization
from chainrule.serialization import ModelFileError, save_safetensors

X = np.random.default_rng(0).normal(size=(7, 4))


@pytest.mark.parametrize("make", [
    lambda: cr.nn.MLP(4, [5, 3], 2, activation=["tanh", "leaky_relu"], rng=0),
    lambda: cr.nn.MLP(4, [6], 3, rng=1, dtype=np.float32),
    lambda: cr.nn.MLP(4, [3], 1, activation=cr.nn.LeakyReLU(0.3), rng=2),
    lambda: cr.nn.LogisticRegression(4, init="uniform", rng=0),
    lambda: cr.nn.SoftmaxRegression(4, 3, init="normal", rng=0),
    lambda: cr.nn.LinearRegression(4, init="uniform", rng=0),
    lambda: cr.nn.Sequential(cr.nn.Linear(4, 3, rng=0), cr.nn.Softplus(), cr.nn.Linear(3, 2, bias=False, rng=1)),
])
def test_round_trip(tmp_path, make):
    model = make()
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = cr.nn.load(path)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded(X).numpy(), model(X).numpy())
    for (n, p), (m, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n == m and p.dtype == q.dtype
    assert loaded.metadata == {}


def test_metadata_is_kept_and_reaches_the_file_as_json(tmp_path):
    from chainrule.data.preprocess import Standardizer

    model = cr.nn.SoftmaxRegression(4, 3)
    scaler = Standardizer().fit(X)
    meta = {"standardizer": scaler.to_dict(), "classes": ["a", "b", "c"], "epochs": np.int64(3)}
    path = tmp_path / "m.safetensors"
    cr.nn.save(model, path, metadata=meta)
    loaded = cr.nn.load(path)
    assert loaded.metadata["classes"] == ["a", "b", "c"] and loaded.metadata["epochs"] == 3
    again = Standardizer.from_dict(loaded.metadata["standardizer"])
    np.testing.assert_allclose(again.transform(X), scaler.transform(X))
    assert cr.nn.load_metadata(path) == loaded.metadata
    loaded.save(tmp_path / "again.safetensors")  # a loaded model keeps its metadata when saved again
    assert cr.nn.load_metadata(tmp_path / "again.safetensors") == loaded.metadata
    with pytest.raises(TypeError, match="JSON-serializable"):
        model.save(tmp_path / "bad.safetensors", metadata={"fn": print})
    assert not (tmp_path / "bad.safetensors").exists()


def test_the_safetensors_package_reads_our_files(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    model = cr.nn.MLP(4, [5], 2, rng=0, dtype=np.float32)
    path = tmp_path / "m.safetensors"
    model.save(path)
    arrays = load_file(str(path))
    assert set(arrays) == {n for n, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(arrays[name], p.numpy())
        assert arrays[name].dtype == np.float32
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert json.loads(meta["chainrule.config"]) == model.config()
    assert meta["chainrule.version"] == cr.__version__


def test_pytorch_loads_linear_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model = cr.nn.MLP(4, [5], 2, activation="tanh", rng=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    state = load_file(str(path))
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    net.load_state_dict({k.replace("layers.1", "2").replace("layers.0", "0"): v for k, v in state.items()})
    np.testing.assert_allclose(net(torch.tensor(X)).detach().numpy(), model(X).numpy(), rtol=1e-12)


def test_truncated_and_corrupted_files_fail_clearly(tmp_path):
    path = tmp_path / "m.safetensors"
    cr.nn.MLP(4, [5], 2, rng=0).save(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[:-10])
    with pytest.raises(ModelFileError, match="cut.safetensors.*truncated"):
        cr.nn.load(cut)
    (n,) = struct.unpack("<Q", raw[:8])
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(raw[:8] + raw[8:8 + n].replace(b'"dtype"', b'"dtyqe"') + raw[8 + n:])
    with pytest.raises(ModelFileError, match="broken.safetensors"):
        cr.nn.load(broken)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello")
    with pytest.raises(ModelFileError, match="too short"):
        cr.nn.load(junk)
    with pytest.raises(FileNotFoundError):
        cr.nn.load(tmp_path / "missing.safetensors")


def test_bad_config_and_mismatched_weights_fail_clearly(tmp_path):
    model = cr.nn.MLP(4, [5], 2, rng=0)
    meta = {"chainrule.format": "model", "chainrule.version": cr.__version__}
    path = tmp_path / "m.safetensors"
    save_safetensors(path, model.state_dict(), {**meta, "chainrule.config": json.dumps({**model.config(), "hidden": [6]})})
    # Checked before the model is built: the config's 44 parameters against the file's 37.
    with pytest.raises(ModelFileError, match="config declares a model of 44 parameters but the file holds 37"):
        cr.nn.load(path)
    save_safetensors(path, model.state_dict(), {**meta, "chainrule.config": "{not json"})
    with pytest.raises(ModelFileError, match="model config stored in the file is not valid JSON"):
        cr.nn.load(path)
    save_safetensors(path, model.state_dict(), {**meta, "chainrule.config": json.dumps({"class": "Transformer"})})
    with pytest.raises(ModelFileError, match="unknown module class 'Transformer'"):
        cr.nn.load(path)
    save_safetensors(path, model.state_dict(), {**meta, "chainrule.config": json.dumps({**model.config(), "depth": 3})})
    with pytest.raises(ModelFileError, match="cannot rebuild the model"):
        cr.nn.load(path)
    f32 = {k: v.astype(np.float32) for k, v in model.state_dict().items()}
    save_safetensors(path, f32, {**meta, "chainrule.config": json.dumps(model.config())})
    with pytest.raises(ModelFileError, match="dtype float32 in the state, float64 in the model"):
        cr.nn.load(path)
    save_safetensors(path, model.state_dict())
    with pytest.raises(ModelFileError, match="not a chainrule file"):
        cr.nn.load(path)


def test_atomic_save_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    old = cr.nn.MLP(4, [5], 2, rng=0)
    old.save(path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(chainrule.serialization.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        cr.nn.MLP(4, [9], 2, rng=1).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind
    np.testing.assert_array_equal(cr.nn.load(path)(X).numpy(), old(X).numpy())


def _train(model, opt, rng, steps):
    for _ in range(steps):
        idx = rng.integers(0, len(X), 4)
        opt.zero_grad()
        loss = cr.nn.functional.cross_entropy(model(X[idx]), idx % 3)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda ps: cr.optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
])
def test_checkpoint_resume_is_bit_identical(tmp_path, make_opt):
    path = tmp_path / "ckpt.safetensors"
    model = cr.nn.MLP(4, [8], 3, activation="tanh", rng=0, dtype=np.float32)
    opt = make_opt(model.parameters())
    rng = np.random.default_rng(5)
    _train(model, opt, rng, 5)
    cr.nn.save_checkpoint(path, model, opt, extra={"epoch": 5, "rng": rng.bit_generator.state})
    _train(model, opt, rng, 7)
    straight = [p.numpy().copy() for p in model.parameters()]

    fresh = cr.nn.MLP(4, [8], 3, activation="tanh", rng=99, dtype=np.float32)
    fresh_opt = make_opt(fresh.parameters())
    extra = cr.nn.load_checkpoint(path, fresh, fresh_opt)
    assert extra["epoch"] == 5
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = extra["rng"]
    _train(fresh, fresh_opt, rng2, 7)
    for a, b in zip(straight, fresh.parameters()):
        np.testing.assert_array_equal(a, b.numpy())


def test_checkpoint_mismatches_leave_the_model_untouched(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    model = cr.nn.MLP(4, [8], 3, rng=0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt, np.random.default_rng(0), 2)
    cr.nn.save_checkpoint(path, model, opt)
    other = cr.nn.MLP(4, [8], 3, rng=1)
    before = other.state_dict()
    with pytest.raises(ModelFileError, match="optimizer state does not fit.*'SGD'"):
        cr.nn.load_checkpoint(path, other, cr.optim.Adam(other.parameters()))
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ModelFileError, match="weights do not match"):
        cr.nn.load_checkpoint(path, cr.nn.MLP(4, [7], 3), None)
    with pytest.raises(ModelFileError, match="this is a chainrule checkpoint; read it with load_checkpoint"):
        cr.nn.load(path)
    assert cr.nn.load_checkpoint(path, other) is None  # model only, no extra saved
    model.save(tmp_path / "model.safetensors")
    with pytest.raises(ModelFileError, match="expected a chainrule checkpoint file"):
        cr.nn.load_checkpoint(tmp_path / "model.safetensors", other)


# -- hostile files: each refused with a ModelFileError, before anything large is allocated ----------

def _model_file(tmp_path, metadata=None, name="m.safetensors"):
    path = tmp_path / name
    cr.nn.MLP(3, [4], 2, rng=0).save(path, metadata=metadata)
    return path


def _rewrite_meta(path, **changes):
    """Write path's tensors again with some metadata keys replaced (a checksum is computed anew)."""
    tensors, meta = chainrule.serialization.load_safetensors(path)
    save_safetensors(path, tensors, {**meta, **changes})
    return path


def test_nested_brackets_are_refused_by_depth_not_recursion(tmp_path):
    path = tmp_path / "deep.safetensors"
    header = b"[" * 1000 + b"]" * 1000
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelFileError, match="nested 1000 levels deep"):
        cr.nn.load(path)
    path = _rewrite_meta(_model_file(tmp_path), **{"chainrule.metadata": "[" * 5000 + "]" * 5000})
    with pytest.raises(ModelFileError, match="nested 5000 levels deep"):
        cr.nn.load(path)


def test_malformed_header_and_config_values(tmp_path):
    path = tmp_path / "m.safetensors"
    header = json.dumps({"w": {"dtype": {}, "shape": [1], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(ModelFileError, match="unknown dtype"):
        cr.nn.load(path)
    path = _rewrite_meta(_model_file(tmp_path), **{"chainrule.config": json.dumps({"class": "Sequential"})})
    with pytest.raises(ModelFileError, match="cannot rebuild the model.*KeyError"):
        cr.nn.load(path)


def test_a_config_larger_than_its_file_is_refused_before_building(tmp_path):
    # The bomb made small: 4000 x 4000 weights (128 MB; the 40000 x 40000 would be 11.9 GiB)
    # in a file of 26 numbers. The check fires on the declared size, before anything is built.
    config = {"class": "MLP", "in_features": 3, "hidden": [4000, 4000], "out_features": 2,
              "activation": "relu", "init": "xavier_uniform", "dtype": "float64"}
    path = _rewrite_meta(_model_file(tmp_path), **{"chainrule.config": json.dumps(config)})
    assert path.stat().st_size < 8192
    with pytest.raises(ModelFileError, match=r"declares a model of 16028002 parameters but the file holds 26"):
        cr.nn.load(path)


@pytest.mark.parametrize("other, match", [
    ({"class": "MSELoss", "reduction": "mean"}, "of 16004000 parameters"),  # a loss has none
    ({"class": "NotAModule"}, "of at least 16004000 parameters"),  # the known layers still count
])
def test_a_large_layer_beside_a_loss_or_an_unknown_layer_is_still_refused(tmp_path, other, match):
    config = {"class": "Sequential", "layers": [
        {"class": "Linear", "in_features": 4000, "out_features": 4000, "bias": True, "init": "xavier_uniform",
         "dtype": "float64"}, other]}
    path = _rewrite_meta(_model_file(tmp_path), **{"chainrule.config": json.dumps(config)})
    with pytest.raises(ModelFileError, match=match + " but the file holds 26; refusing"):
        cr.nn.load(path)


@pytest.mark.parametrize("metadata, match", [
    ({"classes": ["a", "b", "c"]}, "names 3 classes but the model has 2 output"),
    ({"classes": [["a"], "b"]}, "list of class labels"),
    ({"standardizer": {"mean": [0, 0], "std": [1, 1]}}, "has 2 values but the model has 3 inputs"),
    ({"standardizer": {"mean": [0, 0, 0]}}, "'standardizer' must be"),
    ({"target_standardizer": {"mean": [0.0], "std": [1.0]}}, "has 1 values but the model has 2 outputs"),
])
def test_metadata_that_predict_reads_must_fit_the_model(tmp_path, metadata, match):
    with pytest.raises(ModelFileError, match=match):
        cr.nn.load(_model_file(tmp_path, metadata))


def test_only_regular_files_are_read(tmp_path):
    import signal

    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("blocked on a FIFO")))
    signal.alarm(20)
    try:
        with pytest.raises(ModelFileError, match="is a FIFO"):
            cr.nn.load(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="is a device"):
        cr.nn.load(zero)
    with pytest.raises(ModelFileError, match="is a folder"):
        cr.nn.load(tmp_path)


def test_every_bit_flip_is_detected_or_harmless(tmp_path):
    path = _model_file(tmp_path, {"classes": ["cat", "dog"]})
    raw = path.read_bytes()
    model = cr.nn.load(path)
    state, meta = model.state_dict(), model.metadata
    rng = np.random.default_rng(0)
    flipped = tmp_path / "flipped.safetensors"
    outcomes = {"refused": 0, "same": 0}
    for bit in rng.choice(len(raw) * 8, size=400, replace=False):
        data = bytearray(raw)
        data[bit // 8] ^= 1 << (bit % 8)
        flipped.write_bytes(bytes(data))
        try:
            loaded = cr.nn.load(flipped)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        assert loaded.metadata == meta and loaded.config() == model.config(), bit
        for name, value in loaded.state_dict().items():
            assert value.tobytes() == state[name].tobytes(), (bit, name)
        outcomes["same"] += 1
    assert outcomes["refused"] > 300


def test_a_data_bit_flip_is_a_checksum_mismatch(tmp_path):
    path = _model_file(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 4
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        cr.nn.load(path)


def test_files_without_a_checksum_still_load(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    path = _model_file(tmp_path)
    tensors, meta = chainrule.serialization.load_safetensors(path)
    old = tmp_path / "old.safetensors"
    st_numpy.save_file(tensors, str(old), metadata=meta)  # the reference writer: no checksum
    assert cr.nn.load(old).config() == cr.nn.load(path).config()


def test_stale_temporaries_of_killed_saves_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".m.safetensors.{dead}.0123456789ab.tmp"
    live = tmp_path / f".m.safetensors.{os.getppid()}.0123456789ab.tmp"  # a save in progress elsewhere
    other = tmp_path / f".n.safetensors.{dead}.0123456789ab.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    _model_file(tmp_path)
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "m.safetensors"])
