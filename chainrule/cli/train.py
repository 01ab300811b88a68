"""`chainrule train`: train an MLP on a built-in or CSV data set; write the model, metrics and figures."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

BUILTIN = ("digits", "circle", "xor", "gaussians", "spiral", "moons", "plane", "multi_gaussian")
TOY = BUILTIN[1:]  # generated 2-D sets: --n-samples and --noise apply
# The defaults reach 0.97+ test accuracy on digits across split seeds (benchmarks/bench_train.py).
DEFAULTS = {"hidden": [512], "activation": "relu", "optimizer": "adam", "epochs": 30, "batch_size": 32,
            "lr": {"adam": 3e-3, "sgd": 0.05}, "momentum": 0.9, "weight_decay": 1e-3, "seed": 0,
            "test_size": 0.2, "validation_split": 0.1, "schedule": "cosine"}
# The 2-D sets, like TensorFlow Playground's: 500 points (100 test points) with little noise, so
# the shape is there to learn, and a deeper, narrower net trained longer, so a spiral is learnt;
# `chainrule train --data NAME` alone reaches 0.95+ test accuracy on circle, xor, gaussians and
# spiral (tests/cli/test_train.py checks each).
TOY_DEFAULTS = {"n_samples": 500, "noise": 0.05, "hidden": [64, 64], "epochs": 100, "lr": {"adam": 0.01, "sgd": 0.05}}
MODEL_FILE, METRICS_FILE = "model.safetensors", "metrics.json"
# Bounds on what one command may allocate, checked before anything is: stated in --help.
MAX_PARAMETERS = 20_000_000  # weights of the network (with Adam's moments, about 640 MB as float64)
MAX_SAMPLES = 1_000_000  # points of a generated 2-D set
MAX_ABS = 1e100  # |feature| and |target|: squares of larger values overflow float64 in the statistics
MAX_SEED = 2**32 - 1


def register(sub):
    d = DEFAULTS
    p = sub.add_parser(
        "train", help="train a neural network on a data set (default: the bundled digits)",
        description="Train a multilayer perceptron by minibatch gradient descent and write the model "
                    f"({MODEL_FILE}), {METRICS_FILE} and figures to a new output folder. Integer or text "
                    "labels mean classification (softmax cross-entropy), real labels regression (mean "
                    "squared error). Features are standardized with the training set's mean and deviation, "
                    "which the model file keeps with the class names and the test split, so `chainrule "
                    "predict` and `chainrule evaluate` take raw data. Limits: a data file of at most 512 MiB "
                    "of text and 2**27 values, features and targets below 1e100 in magnitude, class labels "
                    f"below 2**31, at most {MAX_PARAMETERS:,} weights, --n-samples at most {MAX_SAMPLES:,}, "
                    f"--seed in 0..2**32-1.")
    add_data_arguments(p, default="digits")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", type=int, nargs="*", default=None, metavar="WIDTH",
                   help="hidden layer widths, e.g. --hidden 64 32 (none: a one-layer model; default 512, "
                        "64 64 for the 2-D sets)")
    g.add_argument("--activation", default=d["activation"], help="hidden activation: relu, tanh, sigmoid, "
                   "leaky_relu, softplus, identity (default relu)")
    g.add_argument("--loss", default=None, help="cross_entropy (default for classes), bce_logits (two classes, "
                   "one output) or mse (default for real targets)")
    g.add_argument("--init", default=None, help="weight initializer: xavier_uniform, xavier_normal, "
                   "kaiming_uniform, kaiming_normal, uniform, normal, zeros (default: kaiming_uniform for "
                   "relu, else xavier_uniform)")
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", default=d["optimizer"], help="adam (default) or sgd")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default 0.003 for adam, 0.01 on the "
                   "2-D sets; 0.05 for sgd)")
    g.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0.9)")
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"],
                   help=f"L2 penalty: adds this times each weight to its gradient (default {d['weight_decay']:g}; 0: none)")
    g.add_argument("--schedule", default=d["schedule"], help="learning rate schedule: cosine (decay to 0 over "
                   "the epochs, default) or none (constant)")
    g.add_argument("--epochs", type=int, default=None, help=f"passes over the training set (default {d['epochs']}, "
                   f"{TOY_DEFAULTS['epochs']} for the 2-D sets)")
    g.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help=f"examples per gradient step (default {d['batch_size']}; 1 is plain SGD)")
    g.add_argument("--diagnostics", action="store_true", help="record per layer and epoch the gradient and weight "
                   "norms, the update/weight ratio and the saturated and dead units (in metrics.json and "
                   "diagnostics.png), and warn naming the layer where gradients vanish or explode")
    step = g.add_mutually_exclusive_group()
    step.add_argument("--compile", action="store_true", help="compute each batch's forward and backward pass as one "
                      "compiled program (cr.compile: traced on the first batch; the same numbers as the eager step; "
                      "the default)")
    step.add_argument("--no-compile", action="store_true", help="train eagerly: record and walk a graph per batch")
    g.add_argument("--no-shuffle", action="store_true", help="visit the examples in file order every epoch")
    g.add_argument("--patience", type=int, default=None, help="stop when the validation loss has not improved "
                   "for this many epochs, and keep the best weights")
    g.add_argument("--seed", type=int, default=d["seed"], help="seed of the split, the weights, the shuffling "
                   "and a generated set (0..2**32-1; the same seed gives the same result; default 0)")
    g.add_argument("--test-size", type=float, default=d["test_size"],
                   help="fraction held out for the test (default 0.2); 0 with --test-data")
    g.add_argument("--test-data", default=None, metavar="PATH", help="a separate test file instead of a split")
    g.add_argument("--validation-split", type=float, default=d["validation_split"],
                   help="fraction of the training part held out for validation (default 0.1; 0: none)")
    g.add_argument("--no-standardize", action="store_true", help="train on the features as they are")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, metavar="FOLDER", help="output folder (default ./chainrule-out, or "
                   "./chainrule-out-2, -3, ... when that holds an earlier run: a run never replaces another)")
    g.add_argument("--overwrite", action="store_true", help="let --out FOLDER replace the run already in it")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-figures", action="store_true", help="write no figures")
    g.add_argument("--json", action="store_true", help="print the final metrics as one JSON object, the only "
                   "output on stdout (messages go to stderr)")
    p.set_defaults(func=run)


def add_data_arguments(p, default=None):
    """--data / DATA, --label, --n-features, --n-samples, --noise: shared by train, predict and evaluate."""
    if default is not None:
        p.add_argument("--data", default=default, help=f"a built-in set ({', '.join(BUILTIN)}) or a CSV/TSV/sparse "
                       f"file path (default {default})")
    p.add_argument("--label", default=None, help="label column of a CSV file: a header name, a 0-based index, "
                   "first or last (default: the header column named label, target, y or class; the first "
                   "column of a file without a header)")
    p.add_argument("--n-features", type=int, default=None, help="number of features of a sparse "
                   "'label index:value' file")
    p.add_argument("--n-samples", type=int, default=None, help="points of a generated 2-D set (default "
                   f"{TOY_DEFAULTS['n_samples']}, or what the model file records; at most {MAX_SAMPLES:,})")
    p.add_argument("--noise", type=float, default=None, help="standard deviation of the jitter of a generated "
                   f"2-D set (default {TOY_DEFAULTS['noise']:g}, or what the model file records)")


# ------------------------------------------------------------------------------ helpers
def usage(message):
    from chainrule.cli import UsageError

    return UsageError(message)


def parse_label(text):
    if text is None:
        return "auto"
    if isinstance(text, int):
        return text
    if text.lstrip("-").isdigit():
        return int(text)
    return text


def toy_options(spec, n_samples=None, noise=None, recorded=None):
    """The n and noise of a generated set: as given, else as the model file recorded (when it
    was trained on the same set), else the defaults; UsageError outside the limits."""
    recorded = recorded if recorded and recorded.get("data") == spec else {}
    n = n_samples if n_samples is not None else recorded.get("n_samples", TOY_DEFAULTS["n_samples"])
    noise = noise if noise is not None else recorded.get("noise", TOY_DEFAULTS["noise"])
    if not 1 <= n <= MAX_SAMPLES:
        raise usage(f"--n-samples must be in 1..{MAX_SAMPLES:,}, got {n}")
    if not (math.isfinite(noise) and 0 <= noise <= 100):
        raise usage(f"--noise must be a number in [0, 100], got {noise}")
    return int(n), float(noise)


def load_data(spec, label=None, n_features=None, seed=0, n_samples=None, noise=None, info=None, quiet=False,
              recorded=None):
    """(X, y) of a built-in set or a file; UsageError on anything wrong.

    label False reads every column of a CSV file as a feature (y is None). ``info``, a dict,
    receives the label ``column`` chosen, its ``name``, the header ``names``, ``n_columns``, and
    for a file its ``sha256`` (so a model file can tell its own data again). Unless quiet, the
    label column of a file is named on stderr. ``recorded``, a model's metadata, supplies the
    size and noise of the generated set it was trained on.
    """
    import hashlib

    import numpy as np

    from chainrule.data import DataError, load, load_file

    info = {} if info is None else info
    if spec in BUILTIN:
        if spec == "digits":
            if n_samples is not None or noise is not None:
                raise usage(f"--n-samples and --noise apply to the generated sets ({', '.join(TOY)}), not to digits")
            X, y = load(spec)
        else:
            n, noise = toy_options(spec, n_samples, noise, recorded)
            X, y = load(spec, n=n, noise=noise, seed=seed)
            info.update(n_samples=n, noise=noise)
        return X, y
    if n_samples is not None or noise is not None:
        raise usage(f"--n-samples and --noise apply to the generated sets ({', '.join(TOY)}), not to {spec}")
    path = Path(spec)
    if not path.exists():
        raise usage(f"no such file or built-in data set: {spec!r} (built-in: {', '.join(BUILTIN)})")
    kw = {"label": None if label is False else parse_label(label), "info": info}
    if n_features is not None:
        if n_features < 1:
            raise usage(f"--n-features must be a positive integer, got {n_features}")
        kw = {"n_features": n_features, "info": info}
    try:
        X, y = load_file(path, **kw)
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    except (DataError, ValueError, OSError) as err:
        raise usage(str(err)) from None
    info["n_columns"] = X.shape[1] + (y is not None)
    for what, a in (("feature", X), ("target", y)):
        if a is not None and a.dtype.kind == "f":
            big = np.argwhere(np.abs(a.reshape(len(a), -1)) > MAX_ABS)
            if len(big):
                row, col = big[0]
                where = f"column {col + 1} of the features" if what == "feature" else "the label column"
                raise usage(f"{spec}: data row {row + 1}, {where}: {a.reshape(len(a), -1)[row, col]:g} is too large "
                            f"(|{what}s| must be at most {MAX_ABS:g}: squares of larger numbers overflow)")
    if y is not None and not quiet and not info.get("sparse"):
        name = f" {info['name']!r}" if info.get("name") else ""
        how = "as asked" if label is not None else ("by its header name" if name else "the first column: the "
                                                     "file has no header; --label picks another")
        print(f"{spec}: labels from column {info['column'] + 1}{name} of {info['n_columns']} ({how})",
              file=sys.stderr)
    return X, y


def data_identity(spec, info, seed):
    """What tells this data set again later: a file's hash, or a generated set's recipe."""
    if spec in TOY:
        return {"n_samples": info["n_samples"], "noise": info["noise"], "data_seed": seed}
    if "sha256" in info:
        return {"data_sha256": info["sha256"]}
    return {}


def same_data(meta, spec, info, seed):
    """Is (spec, info) the data set the model was trained on (so its split applies)?"""
    ident = data_identity(spec, info, seed)
    if spec in BUILTIN:
        return meta.get("data") == spec and all(meta.get(k) == v for k, v in ident.items())
    return bool(ident) and meta.get("data_sha256") == ident["data_sha256"]


def split(X, y, test_size, seed, stratify):
    """The train/test split of `chainrule train`, reproducible from what the model file records."""
    from chainrule.data import train_test_split

    return train_test_split(X, y, test_size=test_size, seed=seed, stratify=stratify)


def check_seed(seed):
    if not 0 <= seed <= MAX_SEED:
        raise usage(f"--seed must be an integer in 0..{MAX_SEED} (2**32-1), got {seed}")


def check_positive(name, value, integer=False):
    if value is None:
        return
    ok = value >= 1 if integer else (math.isfinite(value) and value > 0)
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise usage(f"{name} must be {kind}, got {value}")


def prepare_out(folder, overwrite=False):
    """This run's output folder, made (and checked writable) before any training is spent.

    By default ./chainrule-out, or the first free ./chainrule-out-N: a run never replaces an
    earlier one (whose model a later `evaluate` may still need). A folder given with --out that
    already holds a run is refused unless ``overwrite``.
    """
    if folder is None:
        for k in range(1, 10_000):
            out = Path("chainrule-out" if k == 1 else f"chainrule-out-{k}")
            try:
                out.mkdir()  # atomic: two runs started together get two folders
                break
            except FileExistsError:
                continue
            except OSError as err:
                raise usage(f"cannot create the output folder {out} ({err.strerror or err})") from None
        else:
            raise usage("chainrule-out ... chainrule-out-9999 all exist; pass --out FOLDER")
        folder = str(out)
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise usage(f"--out {folder}: cannot create the folder ({err.strerror or err})") from None
    if not out.is_dir():
        raise usage(f"--out {folder}: not a folder")
    if not os.access(out, os.W_OK | os.X_OK):
        raise usage(f"--out {folder}: the folder is not writable")
    held = [name for name in (MODEL_FILE, METRICS_FILE) if (out / name).exists()]
    if held and not overwrite:
        raise usage(f"--out {folder} already holds a run ({', '.join(held)}); pass --overwrite to replace it, "
                    "or leave out --out for a new folder")
    return out


def _canonical(kind, name):
    from chainrule.nn import activations, init, losses

    module = {"activation": activations, "init": init, "loss": losses}[kind]
    try:
        return module.canonical(name)
    except (ValueError, TypeError) as err:
        raise usage(str(err)) from None


# ------------------------------------------------------------------------------ run
def load_inputs(args):
    """The data of one run, as ``setup`` takes it: {"X", "y", "info", "test"} (test: (X, y) of
    --test-data, or None). A sweep loads it once per distinct data set and ships it to workers."""
    info = {}
    X, y = load_data(args.data, args.label, args.n_features, args.seed, args.n_samples, args.noise, info)
    test = None
    if args.test_data is not None:
        test = load_data(args.test_data, args.label, args.n_features, args.seed, args.n_samples, args.noise)
    return {"X": X, "y": y, "info": info, "test": test}


def resolve(args):
    """Check every option that needs no data and fill in the defaults that depend on the data set
    and the optimizer (args.hidden, args.epochs); returns the resolved settings. UsageError on
    anything wrong, before any data is read (a sweep checks each grid point with it)."""
    opt_name = args.optimizer.lower()
    if opt_name not in ("adam", "sgd"):
        raise usage(f"unknown optimizer {args.optimizer!r}; valid names: adam, sgd")
    schedule = args.schedule.lower()
    if schedule not in ("cosine", "none"):
        raise usage(f"unknown schedule {args.schedule!r}; valid names: cosine, none")
    toy = args.data in TOY
    defaults = {**DEFAULTS, **TOY_DEFAULTS} if toy else DEFAULTS
    if args.hidden is None:
        args.hidden = list(defaults["hidden"])
    if args.epochs is None:
        args.epochs = defaults["epochs"]
    lr = args.lr if args.lr is not None else defaults["lr"][opt_name]
    check_positive("--lr", lr)
    check_positive("--epochs", args.epochs, integer=True)
    check_seed(args.seed)
    check_positive("--batch-size", args.batch_size, integer=True)
    check_positive("--patience", args.patience, integer=True)
    if any(h < 1 for h in args.hidden):
        raise usage(f"--hidden widths must be positive integers, got {args.hidden}")
    if len(args.hidden) > 100:
        raise usage(f"--hidden: at most 100 hidden layers, got {len(args.hidden)}")
    momentum = DEFAULTS["momentum"] if args.momentum is None else args.momentum
    if not 0 <= momentum < 1:
        raise usage(f"--momentum must be in [0, 1), got {momentum}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise usage(f"--weight-decay must be a number >= 0, got {args.weight_decay}")
    if opt_name == "adam" and args.momentum is not None:
        raise usage("--momentum applies to --optimizer sgd (Adam keeps its own moment estimates)")
    if not 0 <= args.validation_split < 1:
        raise usage(f"--validation-split must be in [0, 1), got {args.validation_split}")
    if args.test_data is None and not 0 < args.test_size < 1:
        raise usage(f"--test-size must be in (0, 1), got {args.test_size}")
    _compile_choice(args)  # both switches on (possible in a sweep's options) is refused here, before data
    activation = _canonical("activation", args.activation)
    init = _canonical("init", args.init) if args.init else ("kaiming_uniform" if activation == "relu" else "xavier_uniform")
    return {"optimizer": opt_name, "schedule": schedule, "lr": lr, "momentum": momentum,
            "activation": activation, "init": init}


def _compile_choice(args):
    """fit's ``compile``: forced on or off by --compile / --no-compile, else "auto" (compiled for
    the MLP and losses chainrule builds here)."""
    if getattr(args, "compile", False) and getattr(args, "no_compile", False):
        raise usage("--compile and --no-compile: choose one")
    return True if getattr(args, "compile", False) else False if getattr(args, "no_compile", False) else "auto"


class Training:
    """One run of `chainrule train`, set up by ``setup`` (every check passed, model built) and
    trained by ``fit``; `chainrule train` and each run of `chainrule sweep` are this same code."""

    def fit(self, progress=False):
        """Train; returns the History (also kept as self.history) and the seconds it took."""
        from chainrule.data import DataError
        from chainrule.nn.training import TrainingError, fit

        args, began = self.args, time.perf_counter()
        try:
            self.history = fit(self.model, self.loss, self.Xtr, self.ytr, optimizer=self.optimizer,
                               epochs=args.epochs, batch_size=args.batch_size, shuffle=not args.no_shuffle,
                               seed=args.seed, validation=self.validation,
                               metrics=None if self.classification else ("mse", "r2"),
                               early_stopping=args.patience, callbacks=self.callbacks, progress=progress,
                               diagnostics=args.diagnostics, compile=_compile_choice(args))
        except (TrainingError, DataError) as err:
            raise usage(str(err)) from None
        self.seconds = time.perf_counter() - began
        return self.history

    def evaluate(self):
        """Validation and test metrics of the trained model, with epochs and speed (a dict)."""
        from chainrule import metrics as M
        from chainrule.nn.training import predict

        results, history = {}, self.history
        parts = ([("val", *self.validation)] if self.validation is not None else []) + [("test", self.Xte, self.yte)]
        for name, Xp, yp in parts:
            if self.classification:
                p = predict(self.model, Xp, self.loss)
                results.update({f"{name}_accuracy": M.accuracy(yp, p), f"{name}_error_rate": M.error_rate(yp, p)})
            else:
                p = self.yscaler.inverse_transform(predict(self.model, Xp, self.loss).reshape(len(Xp), -1))
                if name == "val":  # validation targets were scaled for training; score in the data's units
                    yp = self.yscaler.inverse_transform(yp)
                results.update({f"{name}_mse": M.mean_squared_error(yp, p), f"{name}_r2": M.r2_score(yp, p)})
        self.pred = p
        results.update(epochs=len(history), seconds=round(self.seconds, 3),
                       examples_per_second=round(len(history) * len(self.Xtr) / max(self.seconds, 1e-9)))
        if history.stopped_early:
            results["stopped_early_at_epoch"] = history.stopped_early
        return results

    def describe(self):
        """The two lines `chainrule train` prints before training."""
        args, s = self.args, self.settings
        width = "-".join(map(str, args.hidden)) or "none"
        return (f"{args.data}: {len(self.Xtr)} training and {len(self.Xte)} test examples, {self.X.shape[1]} "
                "features, " + (f"{len(self.meta['classes'])} classes" if self.classification
                                else f"{self.n_out} target(s)") + "\n"
                + f"MLP hidden {width} {s['activation']}, {self.loss}, {s['optimizer']} lr {s['lr']:g}"
                + (f" momentum {s['momentum']:g}" if s["optimizer"] == "sgd" else "")
                + (f" weight decay {args.weight_decay:g}" if args.weight_decay else "")
                + f", {args.epochs} epochs of batch {args.batch_size}, schedule {s['schedule']}, seed {args.seed}"
                + (", eager" if getattr(args, "no_compile", False) else ""))


def setup(args, data=None):
    """Check the options of `chainrule train` (an argparse Namespace), load the data unless
    ``data`` (from ``load_inputs``) is given, split and standardize it, and build the model and
    optimizer: a Training ready to ``fit``. UsageError on anything wrong, before any epoch."""
    import numpy as np

    import chainrule as cr
    from chainrule.data import Standardizer, train_test_split

    settings = resolve(args)
    data = load_inputs(args) if data is None else data
    X, y, info = data["X"], data["y"], data["info"]
    classification = y.dtype.kind in "iubU"
    n_out = len(np.unique(y)) if classification else (1 if y.ndim == 1 else y.shape[1])
    weights = count_parameters(X.shape[1], args.hidden, n_out)
    if weights > MAX_PARAMETERS:
        raise usage(f"--hidden {' '.join(map(str, args.hidden))} makes {weights:,} weights for {X.shape[1]} features "
                    f"and {n_out} outputs, more than the limit of {MAX_PARAMETERS:,}")
    loss = _canonical("loss", args.loss) if args.loss else ("cross_entropy" if classification else "mse")
    valid = ("cross_entropy", "bce_logits") if classification else ("mse",)
    if loss not in valid:
        raise usage(f"--loss {args.loss} does not fit {'class labels' if classification else 'real-valued targets'}"
                    f" with a network that outputs scores; valid: {', '.join(valid)}")
    meta = {"task": "classification" if classification else "regression", "loss": loss,
            "data": args.data, "label": args.label or "auto", "n_features": X.shape[1],
            **data_identity(args.data, info, args.seed)}
    if "column" in info and not info.get("sparse"):
        meta.update(label_column=info["column"], n_columns=info["n_columns"])
        if info.get("names"):
            meta["feature_names"] = [n for j, n in enumerate(info["names"]) if j != info["column"]]
            meta["label_name"] = info["names"][info["column"]]
    if classification:
        classes, y = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise usage(f"{args.data}: every label is {classes[0]}; classification needs at least two classes")
        if loss == "bce_logits" and len(classes) != 2:
            raise usage(f"--loss bce_logits needs exactly two classes, found {len(classes)}")
        meta["classes"] = classes.tolist()
    if data["test"] is not None:
        Xte, yte = data["test"]
        if Xte.shape[1] != X.shape[1]:
            raise usage(f"--test-data has {Xte.shape[1]} features but --data has {X.shape[1]}")
        if classification:
            unknown = np.setdiff1d(yte, classes)
            if len(unknown):
                raise usage(f"--test-data has label {unknown[0]} which the training data does not have")
            yte = np.searchsorted(classes, yte)
        Xtr, ytr = X, y
    else:
        try:
            Xtr, Xte, ytr, yte = split(X, y, args.test_size, args.seed, classification)
        except ValueError as err:
            raise usage(f"cannot split {args.data} ({len(X)} examples) with --test-size {args.test_size}: {err}") from None
        # evaluate scores the held-out part of the same data: the split is made again from this
        meta["split"] = {"test_size": args.test_size, "seed": args.seed, "stratify": classification,
                         "n_examples": len(X)}

    scaler = None
    if not args.no_standardize:
        scaler = Standardizer().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        meta["standardizer"] = scaler.to_dict()
    yscaler = None
    if not classification:
        yscaler = Standardizer().fit(ytr.reshape(len(ytr), -1))
        ytr = yscaler.transform(ytr.reshape(len(ytr), -1))
        meta["target_standardizer"] = yscaler.to_dict()
    n_out = (1 if loss == "bce_logits" else len(classes)) if classification else ytr.shape[1]
    try:
        model = cr.nn.MLP(X.shape[1], list(args.hidden), n_out, activation=settings["activation"],
                          init=settings["init"], rng=args.seed)
    except ValueError as err:
        raise usage(str(err)) from None
    lr, wd = settings["lr"], args.weight_decay
    optimizer = (cr.optim.Adam(model.parameters(), lr=lr, weight_decay=wd) if settings["optimizer"] == "adam"
                 else cr.optim.SGD(model.parameters(), lr=lr, momentum=settings["momentum"], weight_decay=wd))
    callbacks = []
    if settings["schedule"] == "cosine":
        scheduler = cr.optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
        callbacks.append(lambda epoch, logs: scheduler.step())
    validation = None
    if args.validation_split:
        try:
            Xtr, Xv, ytr, yv = train_test_split(Xtr, ytr, test_size=args.validation_split, seed=args.seed + 1,
                                                stratify=classification)
        except ValueError as err:
            raise usage(f"cannot hold out --validation-split {args.validation_split} of {len(Xtr)} training "
                        f"examples: {err}") from None
        validation = (Xv, yv)
    job = Training()
    job.__dict__.update(args=args, settings=settings, X=X, y=y, Xtr=Xtr, ytr=ytr, Xte=Xte, yte=yte,
                        validation=validation, classification=classification, loss=loss, n_out=n_out, meta=meta,
                        scaler=scaler, yscaler=yscaler, model=model, optimizer=optimizer, callbacks=callbacks)
    return job


def run(args):
    from chainrule.serialization import save_json_atomic

    job = setup(args)
    print(job.describe(), file=sys.stderr)
    out = prepare_out(args.out, args.overwrite)
    history = job.fit(progress=not args.no_progress)
    results = job.evaluate()
    seconds = job.seconds

    job.model.save(out / MODEL_FILE, metadata=job.meta)
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    save_json_atomic(out / METRICS_FILE, {"results": results, "options": options, "model": job.model.config(),
                                          "history": history.to_dict()})
    written = [MODEL_FILE, METRICS_FILE]
    if not args.no_figures:
        written += _figures(out, job.model, history, job.loss, job.classification, job.X, job.y, job.scaler,
                            job.yte, job.pred, job.meta)

    # With --json, stdout is the one JSON document and every message goes to stderr.
    say = sys.stderr if args.json else sys.stdout
    for key, value in results.items():
        if key.startswith(("val_", "test_")):
            print(f"{key.replace('_', ' ')}: {value:.4f}", file=say)
    print(f"trained {len(history)} epochs in {seconds:.1f} s; wrote {', '.join(written)} to {out}", file=say)
    if args.json:
        print(json.dumps({**results, "out": str(out)}))
    return 0


def count_parameters(n_in, hidden, n_out):
    """Weights and biases of an MLP: sum over layers of (inputs + 1) * outputs."""
    widths = [n_in, *hidden, n_out]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def _figures(out, model, history, loss, classification, X, y, scaler, yte, pred, meta):
    """Write what can be drawn; a missing matplotlib is a notice, not a failure."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")', file=sys.stderr)
        return []
    from chainrule import metrics as M
    from chainrule.nn.training import hidden_outputs, predict
    from chainrule.viz import nnplots

    written = []
    if history.diagnostics:
        from chainrule.viz.diagnostics import plot_diagnostics

        plot_diagnostics(history, out / "diagnostics.png", title=f"{meta['data']}: gradients and units per layer")
        written.append("diagnostics.png")
    nnplots.plot_history(history, out / "loss.png", title=f"{meta['data']}: training")
    written.append("loss.png")
    if classification:
        cm = M.confusion_matrix(yte, pred, n_classes=len(meta["classes"]))
        nnplots.plot_confusion_matrix(cm, labels=meta["classes"], path=out / "confusion.png",
                                      title="test set")
        written.append("confusion.png")
    if X.shape[1] == 2:
        def scaled(P):
            return scaler.transform(P) if scaler is not None else P

        if classification:
            nnplots.plot_decision_boundary(lambda P: predict(model, scaled(P), loss), X, y,
                                           out / "decision_boundary.png", title=f"{meta['data']}: decision boundary")
        else:
            nnplots.plot_decision_boundary(lambda P: predict(model, scaled(P), loss).ravel(), X, y,
                                           out / "decision_boundary.png", title=f"{meta['data']}: prediction",
                                           classification=False)
        written.append("decision_boundary.png")
        if model.hidden:
            nnplots.plot_hidden_units(lambda P: hidden_outputs(model, scaled(P)), X,
                                      y if classification else None, out / "hidden_units.png",
                                      title="each hidden unit's output over the plane")
            written.append("hidden_units.png")
    return written
