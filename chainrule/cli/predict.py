"""`chainrule predict`: a trained model's predictions for each row of a data file or built-in set."""
from __future__ import annotations

import sys

from chainrule.cli.train import add_data_arguments, load_data, usage


def register(sub):
    p = sub.add_parser("predict", help="predict with a model written by `chainrule train`",
                       description="Print (or write with -o) one prediction per example: the class label for a "
                                   "classifier, the value for a regression. The data is raw: the model file "
                                   "carries the standardization and the class labels. A file may have the "
                                   "label column or not.")
    p.add_argument("model", metavar="MODEL", help="a model file (model.safetensors)")
    p.add_argument("data", metavar="DATA", help="a CSV/TSV/sparse file or a built-in data set name")
    add_data_arguments(p)
    p.add_argument("--proba", action="store_true", help="also give each class's probability")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write a CSV file instead of printing")
    p.add_argument("--seed", type=int, default=0, help="seed of a generated built-in set (default 0)")
    p.set_defaults(func=run)


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


def features(model, meta, args, labeled=False):
    """(X ready for the model, raw labels or None) from DATA, checked against the model."""
    from chainrule.data import Standardizer

    label = args.label if args.label is not None else meta.get("label")
    n_in = model.config().get("in_features")
    X, y = load_data(args.data, label, args.n_features, args.seed, allow_unlabeled=0 if labeled else n_in)
    if n_in is not None and X.shape[1] != n_in:
        raise usage(f"{args.data} has {X.shape[1]} features (plus a label column) but the model expects {n_in}")
    if "standardizer" in meta:
        X = Standardizer.from_dict(meta["standardizer"]).transform(X)
    return X, y


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
    return 0


def _cell(v):
    # Labels print as written in the data; numbers with 10 significant digits.
    if isinstance(v, float) or getattr(v, "dtype", None) is not None and v.dtype.kind == "f":
        return f"{float(v):.10g}"
    return str(v.item() if hasattr(v, "item") else v)
