"""`chainrule evaluate`: a trained model's accuracy (or mean squared error) on labelled data."""
from __future__ import annotations

import json
import sys

from chainrule.cli.predict import add_seed_argument, features, load_model, outputs
from chainrule.cli.train import add_data_arguments, same_data, split, usage


def register(sub):
    p = sub.add_parser("evaluate", help="score a model written by `chainrule train` on labelled data",
                       description="Accuracy, error rate and cross-entropy of a classifier, or mean squared "
                                   "error and R^2 of a regression, on raw labelled data. On the data set the "
                                   "model was trained on, only the test part that training held out is scored "
                                   "(the model file records the split); --all scores every example.")
    p.add_argument("model", metavar="MODEL", help="a model file (model.safetensors)")
    p.add_argument("data", metavar="DATA", help="a labelled CSV/TSV/sparse file or a built-in data set name")
    add_data_arguments(p)
    add_seed_argument(p)
    p.add_argument("--all", action="store_true", help="score every example, also those the model was trained on")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object, the only output "
                   "on stdout (messages go to stderr)")
    p.set_defaults(func=run)


def held_out(meta, args, info, X, y):
    """The test part of (X, y) when it is the model's own training data (else all of it), and
    a sentence saying which part is scored."""
    recipe = meta.get("split")
    seed = args.seed if args.seed is not None else meta.get("data_seed", 0)
    if not recipe or not same_data(meta, args.data, info, seed) or recipe.get("n_examples") != len(X):
        if same_data(meta, args.data, info, seed):
            return X, y, f"all {len(X)} examples: every one was used in training (no test part recorded)"
        return X, y, None
    if args.all:
        n_test = len(X) - len(split(X, y, recipe["test_size"], recipe["seed"], recipe["stratify"])[0])
        return X, y, (f"all {len(X)} examples, {len(X) - n_test} of them used in training: not a held-out "
                      "score")
    _, Xte, _, yte = split(X, y, recipe["test_size"], recipe["seed"], recipe["stratify"])
    return Xte, yte, (f"the {len(Xte)} test examples that training held out of {len(X)} (seed {recipe['seed']}, "
                      f"test size {recipe['test_size']:g}); --all scores every example")


def run(args):
    import numpy as np

    from chainrule import metrics as M
    from chainrule.nn.training import evaluate

    model, meta = load_model(args.model)
    info = {}
    X, y = features(model, meta, args, labeled=True, info=info)
    X, y, scored = held_out(meta, args, info, X, y)
    if scored:
        print(f"{args.data}: scoring {scored}", file=sys.stderr)
    pred = outputs(model, meta, X)
    results = {"examples": len(X)}
    if "classes" in meta:
        classes = np.asarray(meta["classes"])
        if (y.dtype.kind == "U") != (classes.dtype.kind == "U"):
            raise usage(f"{args.data}: the labels are {'names' if y.dtype.kind == 'U' else 'numbers'} but the "
                        f"model's classes are {', '.join(map(str, classes))}")
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
    if scored:
        results["scored"] = scored
    if args.json:
        print(json.dumps(results))
        return 0
    for key, value in results.items():
        if key != "scored":
            print(f"{key.replace('_', ' ')}: {value:.4f}" if isinstance(value, float) else
                  f"{key.replace('_', ' ')}: {value}")
    return 0
