"""What a sweep's rows say: the summary table (mean ± std over seeds), its figures, one HTML page."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

# Fields of a row that are results, not decisions.
NOT_DECISIONS = ("run", "seed", "options", "error", "worker", "wall_time", "seconds", "examples_per_second",
                 "epochs", "stopped_early_at_epoch", "train_loss")


def metric_of(rows):
    """The score a sweep ranks by: test accuracy for classes, test R² for real targets."""
    ok = [r for r in rows if "error" not in r]
    return "test_accuracy" if ok and "test_accuracy" in ok[0] else "test_r2"


def decisions(rows):
    """The options that take more than one value across the rows (the swept decisions)."""
    names = []
    for r in rows:
        for k in r:
            if k not in names and k not in NOT_DECISIONS and not k.endswith("_curve") and not _is_metric(k):
                names.append(k)
    return [k for k in names if len({label(r.get(k)) for r in rows}) > 1]


def _is_metric(k):
    return k.startswith(("train_", "val_", "test_"))


def label(value):
    """A value as the table shows it: hidden [8, 8] is "8-8", no hidden layer "none"."""
    if isinstance(value, list):
        return "-".join(map(str, value)) or "none"
    return str(value)


def _stats(values):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def tables(rows, metric=None):
    """(configurations, per decision): lists of (label, mean, std, n) sorted best first.
    A configuration is one grid point, its statistics taken over the seeds."""
    metric = metric or metric_of(rows)
    names = decisions(rows)
    ok = [r for r in rows if "error" not in r and r.get(metric) is not None]
    groups = {}
    for r in ok:
        groups.setdefault(", ".join(f"{k}={label(r.get(k))}" for k in names) or "all", []).append(r[metric])
    configs = sorted(((g, *_stats(v)) for g, v in groups.items()), key=lambda t: -t[1])
    per = {}
    for k in names:
        by = {}
        for r in ok:
            by.setdefault(label(r.get(k)), []).append(r[metric])
        per[k] = sorted(((v, *_stats(xs)) for v, xs in by.items()), key=lambda t: -t[1])
    return configs, per


def summary(rows, metric=None, top=10):
    """The summary as text: the best configurations, then each decision's values, best first."""
    metric = metric or metric_of(rows)
    configs, per = tables(rows, metric)
    errors = sum("error" in r for r in rows)
    lines = [f"{len(rows)} runs" + (f" ({errors} stopped by an error)" if errors else "")
             + f"; {metric.replace('_', ' ')}, mean ± std over seeds", "", "best configurations:"]
    width = max([len(c[0]) for c in configs] + [10])
    for name, mean, std, n in configs[:top]:
        lines.append(f"  {name:<{width}}  {mean:.4f} ± {std:.4f}  (n={n})")
    if len(configs) > top:
        lines.append(f"  ... {len(configs) - top} more")
    for k, values in per.items():
        lines += ["", f"{k}:"]
        w = max(len(v[0]) for v in values)
        for v, mean, std, n in values:
            lines.append(f"  {v:<{w}}  {mean:.4f} ± {std:.4f}  (n={n})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ figures
def figures(rows, metric=None):
    """{name: matplotlib Figure}: accuracy against depth and width (when hidden is swept), the
    distribution for each value of each decision, learning curves of the best and worst run."""
    from chainrule.viz.nnplots import _figure

    metric = metric or metric_of(rows)
    ok = [r for r in rows if "error" not in r and r.get(metric) is not None]
    if not ok:
        return {}
    figs = {}
    names = decisions(ok)
    if "hidden" in names:
        depth = sorted({len(r["hidden"]) for r in ok})
        width = sorted({max(r["hidden"], default=0) for r in ok})
        grid = [[[] for _ in width] for _ in depth]
        for r in ok:
            grid[depth.index(len(r["hidden"]))][width.index(max(r["hidden"], default=0))].append(r[metric])
        fig = _figure(1.2 + 0.9 * len(width), 1.2 + 0.6 * len(depth))
        ax = fig.subplots()
        means = [[sum(c) / len(c) if c else float("nan") for c in row] for row in grid]
        im = ax.imshow(means, cmap="viridis", aspect="auto", origin="lower")
        for i, row in enumerate(means):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(width)), [str(w) for w in width])
        ax.set_yticks(range(len(depth)), [str(d) for d in depth])
        ax.set_xlabel("width (widest hidden layer)")
        ax.set_ylabel("depth (hidden layers)")
        ax.set_title(f"mean {metric.replace('_', ' ')}")
        fig.colorbar(im, ax=ax)
        figs["depth_width"] = fig
    if names:
        fig = _figure(3.2 * len(names), 3.2)
        for ax, k in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
            values = sorted({label(r.get(k)) for r in ok}, key=lambda v: _order(ok, k, v))
            data = [[r[metric] for r in ok if label(r.get(k)) == v] for v in values]
            ax.boxplot(data)
            for i, d in enumerate(data, 1):
                ax.plot([i + 0.08 * ((j % 5) - 2) for j in range(len(d))], d, ".", alpha=0.5, color="C1")
            ax.set_xticks(range(1, len(values) + 1), values, rotation=30 if len(values) > 4 else 0)
            ax.set_title(k)
            ax.set_ylabel(metric.replace("_", " "))
            ax.grid(alpha=0.3)
        figs["distributions"] = fig
    best = max(ok, key=lambda r: r[metric])
    worst = min(ok, key=lambda r: r[metric])
    fig = _figure(6, 3.4)
    ax = fig.subplots()
    for r, what, color in ((best, "best", "C2"), (worst, "worst", "C3")):
        name = ", ".join(f"{k}={label(r.get(k))}" for k in names) + f", seed {r['seed']}"
        ax.plot(range(1, len(r["loss_curve"]) + 1), r["loss_curve"], color=color,
                label=f"{what}: {name} ({r[metric]:.3f})")
        if "val_loss_curve" in r:
            ax.plot(range(1, len(r["val_loss_curve"]) + 1), r["val_loss_curve"], "--", color=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (dashed: validation)")
    ax.set_yscale("log")
    ax.legend(frameon=False, fontsize=7)
    ax.set_title("learning curves of the best and the worst run")
    figs["learning_curves"] = fig
    return figs


def _order(rows, k, v):
    """Values in their natural order (numbers by size, widths by depth) where they have one."""
    for r in rows:
        if label(r.get(k)) == v:
            x = r.get(k)
            return (0, len(x), x) if isinstance(x, list) else (0, x, []) if isinstance(x, (int, float)) else (1, 0, v)
    return (1, 0, v)


def write_figures(rows, out, metric=None):
    """Write each figure as out/NAME.png; returns the names written (none without matplotlib)."""
    from chainrule.viz.nnplots import save_figure

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    written = []
    for name, fig in figures(rows, metric).items():
        save_figure(fig, Path(out) / f"{name}.png")
        written.append(f"{name}.png")
    return written


def write_report(rows, out, metric=None):
    """One self-contained HTML page (figures inlined as PNG data) with the summary tables."""
    metric = metric or metric_of(rows)
    configs, per = tables(rows, metric)
    parts = [f"<h1>chainrule sweep: {len(rows)} runs</h1>",
             f"<p>{html.escape(metric.replace('_', ' '))}, mean ± standard deviation over seeds.</p>"]

    def table(title, entries):
        body = "".join(f"<tr><td>{html.escape(n)}</td><td>{m:.4f}</td><td>{s:.4f}</td><td>{k}</td></tr>"
                       for n, m, s, k in entries)
        return (f"<h2>{html.escape(title)}</h2><table><tr><th></th><th>mean</th><th>std</th><th>n</th></tr>"
                f"{body}</table>")

    parts.append(table("best configurations", configs))
    for k, values in per.items():
        parts.append(table(k, values))
    try:
        figs = figures(rows, metric)
    except ImportError:
        figs = {}
        parts.append('<p>figures need matplotlib: pip install "chainrule[viz]"</p>')
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        parts.append(f'<h2>{name.replace("_", " ")}</h2><img alt="{name}" '
                     f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    spec = Path(out) / "sweep.json"
    if spec.exists():
        parts.append(f"<h2>the sweep</h2><pre>{html.escape(json.dumps(json.loads(spec.read_text()), indent=1))}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>chainrule sweep</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}"
            "</style></head><body>" + "".join(parts) + "</body></html>\n")
    from chainrule.serialization import atomic_write

    path = Path(out) / "report.html"
    atomic_write(path, page.encode("utf-8"))
    return path
