"""`chainrule predict`: a trained model's predictions for each row of a data file or built-in set."""
from __future__ import annotations

import sys

from chainrule.cli.train import BUILTIN, add_data_arguments, check_seed, load_data, usage


def register(sub):
    p = sub.add_parser("predict", help="predict with a model written by `chainrule train`",
                       description="Print (or write with -o) one prediction per example: the class label for a "
                                   "classifier, the value for a regression. The data is raw: the model file "
                                   "carries the standardization and the class labels. A file may have the "
                                   "label column or not: its columns are counted against the model's features, "
                                   "and stderr says which case applies.")
    p.add_argument("model", metavar="MODEL", help="a model file (model.safetensors)")
    p.add_argument("data", metavar="DATA", help="a CSV/TSV/sparse file or a built-in data set name")
    add_data_arguments(p)
    p.add_argument("--proba", action="store_true", help="also give each class's probability")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write a CSV file instead of printing")
    add_seed_argument(p)
    p.add_argument("--json", action="store_true", help="print the predictions as one JSON object, the only "
                   "output on stdout")
    p.set_defaults(func=run)


def add_seed_argument(p):
    p.add_argument("--seed", type=int, default=None, help="seed of a generated built-in set (default: the "
                   "one the model was trained on, else 0)")


def load_model(path):
    """(model, metadata) of a model file, or a UsageError naming the problem."""
    from pathlib import Path

    import chainrule as cr
    from chainrule.serialization import ModelFileError

    if not Path(path).is_file():
        raise usage(f"no such model file: {path}")
    try:
        model = cr.nn.load(path)
    except (ModelFileError, ValueError, OSError) as err:
        raise usage(f"cannot load the model: {err}") from None
    meta = dict(getattr(model, "metadata", {}) or {})
    if "task" not in meta:
        # Saved by hand rather than by `chainrule train`: several outputs are read as class
        # scores (labels 0..k-1), one output by the model's own default loss, else as a value.
        n_out = getattr(model, "out_features", None)
        loss = getattr(model, "default_loss", None) or ("cross_entropy" if n_out and n_out > 1 else "mse")
        meta.setdefault("loss", loss)
        if loss != "mse":
            meta.setdefault("classes", list(range(max(n_out or 1, 2))))
    return model, meta


def features(model, meta, args, labeled=False, info=None):
    """(X ready for the model, raw labels or None) from DATA, checked against the model.

    A file's columns are counted against the model's n features: n columns are the features
    alone, n + 1 the features and the label column (found by the training data's header name
    or position, or --label); stderr says which. ``info`` receives what load_data learnt.
    """
    from chainrule.data import DataError, Standardizer, csv_columns

    info = {} if info is None else info
    n_in = model.config().get("in_features")
    label, spec = args.label, args.data
    if spec not in BUILTIN and args.n_features is None and n_in is not None:
        try:
            columns = csv_columns(spec)
        except (DataError, OSError) as err:
            raise usage(str(err)) from None
        if columns is not None:
            label = _label_for(meta, args, *columns, n_in, labeled)
    if args.seed is not None:
        check_seed(args.seed)
    seed = args.seed if args.seed is not None else meta.get("data_seed", 0)
    X, y = load_data(spec, label, args.n_features, seed, args.n_samples, args.noise, info, quiet=True,
                     recorded=meta)
    if labeled and y is None:
        raise usage(f"{spec}: no label column to score against")
    if n_in is not None and X.shape[1] != n_in:
        raise usage(f"{spec} has {X.shape[1]} features (plus a label column) but the model expects {n_in}")
    if "standardizer" in meta:
        X = Standardizer.from_dict(meta["standardizer"]).transform(X)
    return X, y


def _label_for(meta, args, width, names, n_in, labeled):
    """Which column of a CSV file holds the label (False: none), from its width and header."""
    spec, expected = args.data, meta.get("feature_names")
    if width == n_in + 1:
        from chainrule.cli.train import parse_label
        from chainrule.data.loaders import DataError, label_column

        if args.label is not None:
            label, how = parse_label(args.label), "as asked"
        elif names and meta.get("label_name") in names:
            label, how = meta["label_name"], "by the training data's header name"
        elif isinstance(meta.get("label_column"), int) and 0 <= meta["label_column"] < width:
            label, how = meta["label_column"], "where the training data had it"
        else:
            label, how = "auto", "by its header name" if names else "the first column"
        try:
            col = label_column(spec, label, names, width)
        except DataError as err:
            raise usage(str(err)) from None
        others = [n for j, n in enumerate(names or ()) if j != col]
        if names and expected and others != expected:
            raise usage(f"{spec}: the feature columns ({', '.join(others)}) are not the model's "
                        f"({', '.join(expected)})")
        name = f" {names[col]!r}" if names else ""
        print(f"{spec}: {width} columns: the model's {n_in} features and the label in column {col + 1}{name} "
              f"({how})", file=sys.stderr)
        return col
    if width == n_in and not labeled:
        if names and expected and names != expected:
            extra = [n for n in names if n not in expected]
            raise usage(f"{spec}: {width} columns, as many as the model's features, but the header "
                        f"({', '.join(names)}) is not the model's features ({', '.join(expected)})"
                        + (f": {', '.join(extra)} is not a feature" if extra else ""))
        print(f"{spec}: {width} columns, read as the model's {n_in} features (no label column)", file=sys.stderr)
        return False
    need = f"{n_in + 1} columns (the model's {n_in} features and the label)"
    if not labeled:
        need = f"{n_in} columns (the model's features) or " + need
    raise usage(f"{spec} has {width} columns; the model takes {n_in} features, so expected {need}")


def outputs(model, meta, X):
    """Predictions in the data's own terms: class labels, or values in the target's units."""
    import numpy as np

    from chainrule.data import Standardizer
    from chainrule.nn.training import predict

    loss = meta.get("loss")
    pred = predict(model, X, loss)
    if "classes" in meta:
        return np.asarray(meta["classes"])[pred]
    pred = pred.reshape(len(X), -1)
    if "target_standardizer" in meta:
        pred = Standardizer.from_dict(meta["target_standardizer"]).inverse_transform(pred)
    return pred


def run(args):
    import json

    from chainrule.nn.training import predict_proba
    from chainrule.serialization import atomic_write

    model, meta = load_model(args.model)
    X, _ = features(model, meta, args)
    pred = outputs(model, meta, X)
    pred = pred.reshape(len(X), -1)
    columns = ["prediction"] if pred.shape[1] == 1 else [f"prediction_{j}" for j in range(pred.shape[1])]
    blocks = [pred]
    if args.proba:
        if "classes" not in meta:
            raise usage("--proba needs a classifier; this model does regression")
        blocks.append(predict_proba(model, X, meta.get("loss")))
        columns += [f"p_{c}" for c in meta["classes"]]
    if args.json:
        doc = {"columns": columns, "rows": [[_json_cell(v) for block in blocks for v in block[i]]
                                            for i in range(len(X))]}
        text = json.dumps(doc) + "\n"
    else:
        lines = [",".join(columns)]
        for i in range(len(X)):
            lines.append(",".join(_cell(v) for block in blocks for v in block[i]))
        text = "\n".join(lines) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write(args.output, text.encode("utf-8"))
    except OSError as err:
        raise usage(f"-o {args.output}: {err}") from None
    print(f"wrote {len(X)} predictions to {args.output}", file=sys.stderr)
    if args.json:  # stdout stays one JSON document: where the predictions went
        sys.stdout.write(json.dumps({"output": str(args.output), "predictions": len(X)}) + "\n")
    return 0


def _json_cell(v):
    v = v.item() if hasattr(v, "item") else v
    return v


def _cell(v):
    # Labels print as written in the data; numbers with 10 significant digits.
    if isinstance(v, float) or getattr(v, "dtype", None) is not None and v.dtype.kind == "f":
        return f"{float(v):.10g}"
    return str(v.item() if hasattr(v, "item") else v)
