"""`chainrule train`, `predict` and `evaluate` end to end, and their answers to bad input."""
import json
import sys

import numpy as np
import pytest

from chainrule.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    """The JSON document of a --json run: the whole of stdout, nothing before or after it."""
    return json.loads(out)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One short run with the default settings on the digits, shared by the tests that read its files."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("digits")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--epochs", "3", "--out", str(folder), "--no-progress", "--json"])
    return folder, code, out.getvalue(), err.getvalue()


def test_default_run_end_to_end(digits_run):
    folder, code, out, err = digits_run
    assert code == 0, err
    result = last_json(out)
    assert 0.8 < result["test_accuracy"] <= 1 and 0.8 < result["val_accuracy"] <= 1
    assert result["epochs"] == 3
    assert "test accuracy:" in err and "val accuracy:" in err  # --json: messages on stderr
    assert "1293 training and 359 test examples" in err and result["out"] == str(folder)
    names = ["model.safetensors", "metrics.json"]
    if "figures skipped" not in err:
        names += ["loss.png", "confusion.png"]
        assert (folder / "loss.png").read_bytes()[:4] == b"\x89PNG"
    for name in names:
        assert (folder / name).stat().st_size > 0, name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["results"] == {k: v for k, v in result.items() if k != "out"}
    assert metrics["history"]["epochs"] == [1, 2, 3]
    assert metrics["model"]["hidden"] == [512]


def test_progress_bar_on_stderr(tmp_path, capsys):
    pytest.importorskip("tqdm")
    code, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2", "--out", str(tmp_path), "--no-figures")
    assert code == 0 and "epoch 2/2" in err and "100%" in err and "epoch 2/2" not in out


def test_same_seed_same_result(tmp_path, capsys):
    results = []
    for i in range(2):
        code, out, _ = run(capsys, "train", "--data", "moons", "--hidden", "8", "--epochs", "4", "--seed", "3",
                           "--out", str(tmp_path / str(i)), "--no-progress", "--no-figures", "--json")
        assert code == 0
        r = last_json(out)
        results.append({k: v for k, v in r.items() if k not in ("seconds", "examples_per_second", "out")})
    assert results[0] == results[1]
    a, b = ((tmp_path / str(i) / "model.safetensors").read_bytes() for i in range(2))
    assert a == b


def test_compiled_and_eager_training_give_the_same_model(tmp_path, capsys):
    safetensors = pytest.importorskip("safetensors.numpy")
    results = {}
    for flag in ("--no-compile", "--compile", None):  # None: the default, compiled
        out_dir = tmp_path / str(flag)
        code, out, err = run(capsys, "train", "--data", "spiral", "--hidden", "16", "16", "--epochs", "5",
                             "--seed", "1", "--out", str(out_dir), "--no-progress", "--no-figures", "--json",
                             *([flag] if flag else []))
        assert code == 0, err
        assert (", eager" in err) == (flag == "--no-compile")
        results[flag] = {k: v for k, v in last_json(out).items() if k not in ("seconds", "examples_per_second", "out")}
    assert results["--no-compile"] == results["--compile"] == results[None]
    eager = safetensors.load_file(str(tmp_path / "--no-compile" / "model.safetensors"))
    for flag in ("--compile", "None"):
        compiled = safetensors.load_file(str(tmp_path / flag / "model.safetensors"))
        assert sorted(eager) == sorted(compiled)
        for name in eager:
            np.testing.assert_allclose(compiled[name], eager[name], rtol=1e-10, atol=1e-13)
    with pytest.raises(SystemExit) as info:  # argparse's usage error
        main(["train", "--data", "xor", "--compile", "--no-compile", "--out", str(tmp_path / "x")])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_two_dimensional_set_draws_the_plane(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "train", "--data", "circle", "--hidden", "6", "--activation", "tanh",
                         "--epochs", "3", "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    for name in ("decision_boundary.png", "hidden_units.png", "loss.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name


def test_regression_and_predict_in_the_data_units(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (120, 3))
    y = 1000.0 + 300.0 * X[:, 0] - 200.0 * X[:, 1] + 0.5  # large targets: scaled for training, not for output
    path = tmp_path / "reg.csv"
    path.write_text("target,a,b,c\n" + "".join(f"{float(t)!r},{float(a)!r},{float(b)!r},{float(c)!r}\n" for t, (a, b, c) in zip(y, X)))
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "train", "--data", str(path), "--label", "target", "--hidden", "--epochs", "60",
                         "--lr", "0.05", "--out", str(out_dir), "--no-progress", "--no-figures", "--json")
    assert code == 0, err
    result = last_json(out)
    assert result["test_mse"] < 1.0 and result["test_r2"] > 0.999
    code, out, err = run(capsys, "evaluate", str(out_dir / "model.safetensors"), str(path), "--json")
    assert code == 0, err
    assert last_json(out)["r2"] > 0.999
    code, out, err = run(capsys, "predict", str(out_dir / "model.safetensors"), str(path))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 121
    np.testing.assert_allclose([float(v) for v in lines[1:]], y, atol=3.0)


def test_predict_and_evaluate_on_raw_files(digits_run, tmp_path, capsys):
    import chainrule as cr

    X, y = cr.data.load_digits()
    rows = slice(0, 50)
    labelled = tmp_path / "some.csv"
    labelled.write_text("".join(f"{label}," + ",".join(f"{v:g}" for v in x) + "\n" for x, label in zip(X[rows], y[rows])))
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(",".join(f"{v:g}" for v in x) + "\n" for x in X[rows]))
    model = str(digits_run[0] / "model.safetensors")

    code, out, err = run(capsys, "predict", model, str(labelled), "-o", str(tmp_path / "preds.csv"), "--proba")
    assert code == 0, err
    table = (tmp_path / "preds.csv").read_text().splitlines()
    assert table[0].split(",") == ["prediction"] + [f"p_{k}" for k in range(10)]
    preds = np.array([int(line.split(",")[0]) for line in table[1:]])
    proba = np.array([[float(v) for v in line.split(",")[1:]] for line in table[1:]])
    assert len(preds) == 50 and np.allclose(proba.sum(1), 1, atol=1e-8)
    assert np.array_equal(preds, proba.argmax(1))

    code, out, err = run(capsys, "predict", model, str(bare))  # no label column: all columns are features
    assert code == 0, err
    assert [int(v) for v in out.split()[1:]] == preds.tolist()
    assert "64 columns, read as the model's 64 features (no label column)" in err

    code, out, err = run(capsys, "evaluate", model, str(labelled), "--json")
    assert code == 0, err
    result = last_json(out)
    assert result["examples"] == 50 and result["accuracy"] == np.mean(preds == y[rows])
    assert result["loss"] > 0 and result["loss_name"] == "cross_entropy"

    # the model file carries the standardizer: a built-in set is scored on raw data too
    code, out, err = run(capsys, "evaluate", model, "digits", "--json")
    assert code == 0 and last_json(out)["accuracy"] > 0.9 and last_json(out)["examples"] == 359


def test_missing_matplotlib_is_a_notice(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    code, out, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", str(tmp_path), "--no-progress")
    assert code == 0 and 'pip install "chainrule[viz]"' in err
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "loss.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--data", "nope.csv"], "no such file or built-in data set: 'nope.csv'"),
    (["--lr", "0"], "--lr must be a positive number, got 0"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--epochs", "-1"], "--epochs must be a positive integer, got -1"),
    (["--activation", "relu6"], "unknown activation 'relu6'; valid names: sigmoid, tanh, relu"),
    (["--loss", "hinge"], "unknown loss 'hinge'; valid names: mse"),
    (["--loss", "mse"], "--loss mse does not fit class labels"),
    (["--init", "glorious"], "unknown initializer 'glorious'; valid names:"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; valid names: adam, sgd"),
    (["--hidden", "0"], "--hidden widths must be positive integers"),
    (["--test-size", "1.5"], "--test-size must be in (0, 1)"),
    (["--momentum", "0.5"], "--momentum applies to --optimizer sgd"),
])
def test_bad_input_exit_2(tmp_path, capsys, argv, message):
    code, out, err = run(capsys, "train", "--out", str(tmp_path / "o"), "--no-progress", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_bad_files_and_folders_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n0,x,4\n")
    code, _, err = run(capsys, "train", "--data", str(bad), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 2 and "line 2: column 2 is not a number: 'x'" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "train", "--data", "xor", "--out", str(blocker / "sub"), "--no-progress")
    assert code == 2 and f"--out {blocker / 'sub'}: cannot create the folder" in err
    code, _, err = run(capsys, "predict", str(tmp_path / "none.safetensors"), "digits")
    assert code == 2 and "no such model file" in err
    code, _, err = run(capsys, "evaluate", str(bad), "digits")
    assert code == 2 and "cannot load the model" in err and "Traceback" not in err


def test_wrong_feature_count_for_a_model(digits_run, tmp_path, capsys):
    small = tmp_path / "small.csv"
    small.write_text("1,0.5,0.5\n0,0.1,0.2\n")
    code, _, err = run(capsys, "predict", str(digits_run[0] / "model.safetensors"), str(small))
    assert code == 2 and "has 3 columns; the model takes 64 features, so expected 64 columns" in err


def test_sparse_file_and_a_model_saved_by_hand(tmp_path, capsys):
    import chainrule as cr

    rng = np.random.default_rng(0)
    lines = []
    for i in range(120):
        label = i % 2
        idx = sorted([label, *(2 + rng.choice(8, 3, replace=False)).tolist()])  # feature 0 or 1 tells the class
        lines.append("\t".join([str(label)] + [f"{j}:1" for j in idx]))
    path = tmp_path / "sparse.tsv"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "train", "--data", str(path), "--n-features", "10", "--hidden", "--epochs", "20",
                         "--lr", "0.05", "--out", str(tmp_path / "o"), "--no-progress", "--no-figures", "--json")
    assert code == 0, err
    assert last_json(out)["test_accuracy"] == 1.0
    code, _, err = run(capsys, "train", "--data", str(path), "--out", str(tmp_path / "o2"), "--no-progress")
    assert code == 2 and "pass n_features" in err

    # a model saved with cr.nn.save (no metadata): several outputs are read as classes 0..k-1
    X, y = cr.data.load_digits()
    model = cr.nn.SoftmaxRegression(64, 10)
    cr.fit(model, None, X / 16, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.5), epochs=3, progress=False)
    model.save(tmp_path / "plain.safetensors")
    csv = tmp_path / "digits.csv"
    csv.write_text("".join(f"{label}," + ",".join(f"{v / 16:g}" for v in x) + "\n" for x, label in zip(X, y)))
    code, out, err = run(capsys, "evaluate", str(tmp_path / "plain.safetensors"), str(csv), "--json")
    assert code == 0, err
    assert last_json(out)["accuracy"] == pytest.approx(np.mean(cr.nn.training.predict(model, X / 16) == y))
