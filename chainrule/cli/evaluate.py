"""`chainrule evaluate`: a trained model's accuracy (or mean squared error) on labelled data."""
from __future__ import annotations

import json

from chainrule.cli.predict import features, load_model, outputs
from chainrule.cli.train import add_data_arguments, usage


def register(sub):
    p = sub.add_parser("evaluate", help="score a model written by `chainrule train` on labelled data",
                       description="Accuracy, error rate and cross-entropy of a classifier, or mean squared "
                                   "error and R^2 of a regression, on raw labelled data.")
    p.add_argument("model", metavar="MODEL", help="a model file (model.safetensors)")
    p.add_argument("data", metavar="DATA", help="a labelled CSV/TSV/sparse file or a built-in data set name")
    add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of a generated built-in set (default 0)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    p.set_defaults(func=run)


def run(args):
    import numpy as np

    from chainrule import metrics as M
    from chainrule.nn.training import evaluate

    model, meta = load_model(args.model)
    X, y = features(model, meta, args, labeled=True)
    pred = outputs(model, meta, X)
    results = {"examples": len(X)}
    if "classes" in meta:
        classes = np.asarray(meta["classes"])
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise usage(f"{args.data}: label {unknown[0]} is not one of the model's classes "
                        f"({', '.join(map(str, classes))})")
        index = np.searchsorted(classes, y)
        results.update(accuracy=M.accuracy(y, pred), error_rate=M.error_rate(y, pred))
        results["loss"] = evaluate(model, meta.get("loss", "cross_entropy"), X, index, metrics=())["loss"]
        results["loss_name"] = meta.get("loss", "cross_entropy")
    else:
        if y.dtype.kind not in "iuf":
            raise usage(f"{args.data}: regression needs numeric targets")
        target = y.reshape(len(y), -1).astype(np.float64)
        if target.shape[1] != pred.shape[1]:
            raise usage(f"{args.data}: {target.shape[1]} target column(s) but the model predicts {pred.shape[1]}")
        results.update(mse=M.mean_squared_error(target, pred), r2=M.r2_score(target, pred))
    for key, value in results.items():
        print(f"{key.replace('_', ' ')}: {value:.4f}" if isinstance(value, float) else f"{key.replace('_', ' ')}: {value}")
    if args.json:
        print(json.dumps(results))
    return 0
