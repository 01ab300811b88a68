"""`chainrule train`, `predict` and `evaluate` do what a newcomer expects: defaults that learn,
the right label column, class names, no overwritten runs, held-out scores, JSON alone on stdout,
and limits that answer with a message instead of a traceback or gigabytes of memory."""
import json

import numpy as np
import pytest

from chainrule.cli import main

QUIET = ("--no-progress", "--no-figures")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, header, rows):
    path.write_text((header + "\n" if header else "") + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def separable(n=120, seed=0):
    """Two features; the class is the sign of a + b, so a model that learns reaches ~1.0."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, (X.sum(1) > 0).astype(int)


@pytest.mark.parametrize("name", ["circle", "xor", "gaussians", "spiral", "moons"])
def test_toy_defaults_learn(name, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--data", name, "--out", str(tmp_path), *QUIET, "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] >= 0.95
    assert "100 test examples" in err


def test_n_samples_and_noise(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--data", "circle", "--n-samples", "300", "--noise", "0", "--epochs", "2",
                         "--out", str(tmp_path), *QUIET)
    assert code == 0 and "60 test examples" in err
    import chainrule as cr

    meta = cr.nn.load_metadata(tmp_path / "model.safetensors")
    assert meta["n_samples"] == 300 and meta["noise"] == 0.0


def test_label_picked_by_header_name(tmp_path, capsys):
    X, y = separable()
    path = write_csv(tmp_path / "d.csv", "a,b,target", [(a, b, t) for (a, b), t in zip(X, y)])
    code, out, err = run(capsys, "train", "--data", str(path), "--hidden", "8", "--epochs", "40",
                         "--out", str(tmp_path / "o"), *QUIET, "--json")
    assert code == 0, err
    assert "labels from column 3 'target' of 3 (by its header name)" in err
    assert json.loads(out)["test_accuracy"] >= 0.9  # the first column as label would be a regression


def test_header_without_a_label_name_is_refused(tmp_path, capsys):
    X, y = separable()
    path = write_csv(tmp_path / "d.csv", "a,b,outcome", [(a, b, t) for (a, b), t in zip(X, y)])
    code, _, err = run(capsys, "train", "--data", str(path), "--out", str(tmp_path / "o"), *QUIET)
    assert code == 2 and "cannot tell the label column" in err and "a, b, outcome" in err
    assert not (tmp_path / "o" / "model.safetensors").exists()
    code, _, err = run(capsys, "train", "--data", str(path), "--label", "outcome", "--epochs", "1",
                       "--out", str(tmp_path / "o"), *QUIET)
    assert code == 0 and "labels from column 3 'outcome' of 3 (as asked)" in err


def test_text_labels_are_classes_and_predict_prints_them(tmp_path, capsys):
    import chainrule as cr

    X, y = separable()
    names = np.array(["no", "yes"])[y]
    path = write_csv(tmp_path / "d.csv", "a,b,class", [(a, b, t) for (a, b), t in zip(X, names)])
    code, out, err = run(capsys, "train", "--data", str(path), "--hidden", "8", "--epochs", "40",
                         "--out", str(tmp_path / "o"), *QUIET, "--json")
    assert code == 0, err
    model = tmp_path / "o" / "model.safetensors"
    assert cr.nn.load_metadata(model)["classes"] == ["no", "yes"]
    code, out, err = run(capsys, "predict", str(model), str(path))
    assert code == 0, err
    predicted = out.split()[1:]
    assert set(predicted) <= {"no", "yes"} and np.mean(np.array(predicted) == names) > 0.9
    code, out, err = run(capsys, "evaluate", str(model), str(path), "--all", "--json")
    assert code == 0 and json.loads(out)["accuracy"] > 0.9


@pytest.mark.parametrize("labels, shown", [(["1e20", "2e20"], "1e+20"), (["9223372036854775808", "0"], "9.2233720368547758e+18")])
def test_huge_whole_number_labels_are_refused(tmp_path, capsys, labels, shown):
    path = write_csv(tmp_path / "d.csv", None, [(labels[i % 2], i, -i) for i in range(40)])
    code, _, err = run(capsys, "train", "--data", str(path), "--out", str(tmp_path / "o"), *QUIET)
    assert code == 2 and "Traceback" not in err
    assert f"{path}: column 1, line" in err and f"label {shown} is a whole number too large" in err


def test_predict_counts_columns_against_the_model(tmp_path, capsys):
    X, y = separable()
    path = write_csv(tmp_path / "d.csv", "a,b,target", [(a, b, t) for (a, b), t in zip(X, y)])
    code, _, err = run(capsys, "train", "--data", str(path), "--hidden", "8", "--epochs", "40",
                       "--out", str(tmp_path / "o"), *QUIET)
    model = str(tmp_path / "o" / "model.safetensors")
    bare = write_csv(tmp_path / "bare.csv", "a,b", X[:10])
    code, out, err = run(capsys, "predict", model, str(bare))  # the help says a file may lack the label
    assert code == 0, err
    assert "2 columns, read as the model's 2 features (no label column)" in err
    assert [int(v) for v in out.split()[1:]] == y[:10].tolist()
    code, out, err = run(capsys, "predict", model, str(path))
    assert code == 0 and "3 columns: the model's 2 features and the label in column 3 'target'" in err
    wrong = write_csv(tmp_path / "wrong.csv", "a,b,c,target", [(1, 2, 3, 0)])
    code, _, err = run(capsys, "predict", model, str(wrong))
    assert code == 2 and "has 4 columns; the model takes 2 features, so expected 2 columns" in err
    renamed = write_csv(tmp_path / "renamed.csv", "target,b", [(1, 2)])
    code, _, err = run(capsys, "predict", model, str(renamed))
    assert code == 2 and "target is not a feature" in err


def test_digits_model_says_how_it_reads_a_file(tmp_path, capsys):
    """Label + 63 features has the model's 64 columns: it is read as features, and stderr says so."""
    import chainrule as cr

    code, _, err = run(capsys, "train", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "o"), *QUIET)
    X, y = cr.data.load_digits()
    path = write_csv(tmp_path / "d.csv", None, [(t, *x[:63].astype(int)) for x, t in zip(X[:5], y[:5])])
    code, out, err = run(capsys, "predict", str(tmp_path / "o" / "model.safetensors"), str(path))
    assert code == 0 and "64 columns, read as the model's 64 features (no label column)" in err


def test_runs_never_overwrite_each_other(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("train", "--data", "xor", "--epochs", "1", "--hidden", "4", *QUIET)
    code, out, err = run(capsys, *args, "--json")
    assert code == 0 and json.loads(out)["out"] == "chainrule-out"
    first = (tmp_path / "chainrule-out" / "model.safetensors").read_bytes()
    code, out, err = run(capsys, *args, "--seed", "1")
    assert code == 0 and "to chainrule-out-2" in out
    assert (tmp_path / "chainrule-out" / "model.safetensors").read_bytes() == first
    code, _, err = run(capsys, *args, "--out", "chainrule-out")
    assert code == 2 and "already holds a run" in err and "--overwrite" in err
    code, _, err = run(capsys, *args, "--out", "chainrule-out", "--overwrite", "--seed", "2")
    assert code == 0 and (tmp_path / "chainrule-out" / "model.safetensors").read_bytes() != first


def test_evaluate_scores_the_held_out_part(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--hidden", "16", "--out", str(tmp_path), *QUIET, "--json")
    trained = json.loads(out)
    model = str(tmp_path / "model.safetensors")
    code, out, err = run(capsys, "evaluate", model, "digits", "--json")
    result = json.loads(out)
    assert code == 0 and result["examples"] == 359 and result["accuracy"] == trained["test_accuracy"]
    assert "held out" in result["scored"] and "held out" in err
    code, out, err = run(capsys, "evaluate", model, "digits", "--all", "--json")
    result = json.loads(out)
    assert result["examples"] == 1797 and "used in training: not a held-out score" in result["scored"]


def test_json_alone_on_stdout(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--data", "moons", "--epochs", "1", "--out", str(tmp_path), *QUIET, "--json")
    assert code == 0 and isinstance(json.loads(out), dict)
    model = str(tmp_path / "model.safetensors")
    code, out, err = run(capsys, "predict", model, "moons", "--json", "--proba")
    doc = json.loads(out)
    assert doc["columns"] == ["prediction", "p_0", "p_1"] and len(doc["rows"]) == 500
    # with -o the document goes to the file, and stdout says where
    code, out, err = run(capsys, "predict", model, "moons", "--json", "--proba", "-o", str(tmp_path / "p.json"))
    assert json.loads((tmp_path / "p.json").read_text()) == doc
    assert json.loads(out) == {"output": str(tmp_path / "p.json"), "predictions": 500}
    code, out, err = run(capsys, "evaluate", model, "moons", "--json")
    assert json.loads(out)["examples"] == 100


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed must be an integer in 0..4294967295"),
    (["--hidden", "1000000", "1000000"], "more than the limit of 20,000,000"),
    (["--data", "spiral", "--n-samples", "100000000"], "--n-samples must be in 1..1,000,000"),
    (["--data", "spiral", "--noise", "nan"], "--noise must be a number"),
    (["--noise", "0.1"], "--n-samples and --noise apply to the generated sets"),
])
def test_arguments_are_bounded(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "o"), *QUIET, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_huge_sparse_width_and_huge_values(tmp_path, capsys):
    sparse = tmp_path / "s.tsv"
    sparse.write_text("1\t0:1\n0\t1:1\n")
    code, _, err = run(capsys, "train", "--data", str(sparse), "--n-features", "1000000000",
                       "--out", str(tmp_path / "o"), *QUIET)
    assert code == 2 and "2,000,000,000 values, more than the limit" in err
    big = write_csv(tmp_path / "big.csv", "label,a,b", [(i % 2, 1e305 * (i + 1), i) for i in range(50)])
    code, _, err = run(capsys, "train", "--data", str(big), "--out", str(tmp_path / "o"), *QUIET)
    assert code == 2 and "data row 1, column 1 of the features: 1e+305 is too large" in err
