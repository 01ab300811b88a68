"""Timing harness: contenders timed in interleaved rounds, medians, ratios to hand-written numpy.

A benchmark module ``benchmarks/bench_<group>.py`` defines ``cases()`` returning a list of
:class:`Case`. Each contender is a *factory*: called once, it sets up its state (arrays, models,
optimizers) and returns the zero-argument ``step`` that is timed. ``step()`` returns what it
computed (loss, gradients, ...), so before timing the harness checks every contender against the
numpy baseline: a contender that computes something else is reported as wrong, not timed.

These machines are noisy, so the contenders run in rounds (A B C, B C A, C A B, ...); each
round times a batch of calls per contender, and the ratio of a contender to numpy is the median
over rounds of the per-round ratio (paired samples cancel slow drifts of the machine).
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

BASELINE = "numpy"


@dataclass
class Case:
    """One benchmark: contenders (name -> factory), the first of which is the numpy baseline."""

    group: str
    name: str
    what: str
    contenders: dict[str, Callable[[], Callable[[], object]]]
    target: float | None = None  # the ratio to numpy that chainrule should reach
    targets: dict[str, float] = field(default_factory=dict)  # other contenders' targets ("compiled")
    reported: dict[str, float] = field(default_factory=dict)  # peers' ratios as the issue measured them
    rtol: float = 1e-6
    atol: float = 1e-9
    skipped: dict[str, str] = field(default_factory=dict)  # contender -> why it did not run
    rounds: int | None = None  # at most this many rounds (a case whose calls take seconds)
    extra: dict[str, dict] = field(default_factory=dict)  # contender -> facts beside its times (its factory may fill them)


class Skip(Exception):
    """Raised by a factory whose peer library is not installed (or cannot run this case)."""


def short(err: BaseException, limit=160) -> str:
    """An error in one line: its type and the first line of its message, cut at ``limit``
    characters (torch.compile's errors run to pages)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def to_numpy(obj):
    """Flatten a step's result into a list of float64 arrays, whatever library produced it."""
    if isinstance(obj, list) and obj and all(isinstance(o, (int, float)) for o in obj):
        return [np.asarray(obj, dtype=np.float64)]  # a gradient given as a list of Python numbers
    if isinstance(obj, (tuple, list)):
        out = []
        for o in obj:
            out.extend(to_numpy(o))
        return out
    if isinstance(obj, dict):
        return to_numpy([obj[k] for k in sorted(obj)])
    module = type(obj).__module__
    if module.startswith("torch"):
        obj = obj.detach().cpu().numpy()
    elif module.startswith("chainrule"):
        obj = obj.numpy()
    elif hasattr(obj, "_value"):  # HIPS autograd box (should not escape, but be safe)
        obj = obj._value
    elif type(obj).__name__ == "Value":  # micrograd
        obj = obj.data
    return [np.asarray(obj, dtype=np.float64)]


def check(case: Case, results: dict[str, object]) -> dict[str, str]:
    """Compare every contender's first result with the baseline's; return name -> problem."""
    ref = to_numpy(results[BASELINE])
    problems = {}
    for name, res in results.items():
        if name == BASELINE:
            continue
        got = to_numpy(res)
        if len(got) != len(ref):
            problems[name] = f"returned {len(got)} arrays, numpy returned {len(ref)}"
            continue
        for i, (g, r) in enumerate(zip(got, ref)):
            if g.shape != r.shape:
                problems[name] = f"output {i} has shape {g.shape}, numpy's has {r.shape}"
                break
            if not np.allclose(g, r, rtol=case.rtol, atol=case.atol):
                err = float(np.max(np.abs(g - r)))
                problems[name] = f"output {i} differs from numpy's by up to {err:.3g}"
                break
    return problems


def _calibrate(step, sample_s):
    """Calls per sample so that one sample lasts about ``sample_s`` seconds (0: one call, and no
    call made here: the first calls are the ones timed)."""
    if sample_s <= 0:
        return 1
    one = float("inf")
    for _ in range(3):  # the fastest of three: a JIT may compile again on its second and third calls
        t0 = time.perf_counter()
        step()
        one = min(one, time.perf_counter() - t0)
    n = 1
    while one * n < sample_s and n < 1 << 20:
        n *= 2
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        one = (time.perf_counter() - t0) / n
    return max(1, int(sample_s / max(one, 1e-9)))


def run_case(case: Case, rounds=30, sample_s=0.004, log=print, only=None, against=None) -> dict:
    """Time one case; returns a JSON-ready record.

    only: the names of the contenders to time (default all). against: a record of this case
    timed before, whose baseline median the contenders' ratios are taken to, unpaired (the
    baseline then runs once, untimed, for the check of their results only).
    """
    if case.rounds is not None:
        rounds = min(rounds, case.rounds)
    steps, results = {}, {}
    skipped = dict(case.skipped)
    for name, factory in case.contenders.items():
        if only is not None and name not in only and name != BASELINE:
            continue
        try:
            step = factory()
            results[name] = step()
        except Skip as why:
            skipped[name] = str(why)
            continue
        except Exception as err:  # a peer that cannot run this case is reported, not fatal
            if name == BASELINE:
                raise
            skipped[name] = short(err)
            continue
        steps[name] = step
    wrong = check(case, results)
    for name, why in wrong.items():
        skipped[name] = f"WRONG RESULT, not timed: {why}"
        steps.pop(name)
    if against is not None:
        steps.pop(BASELINE)
    names = list(steps)
    numbers = {n: _calibrate(steps[n], sample_s) for n in names}
    samples = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names) if names else 0
        for n in names[k:] + names[:k]:  # rotate the order: no contender always runs first
            step, number = steps[n], numbers[n]
            t0 = time.perf_counter()
            for _ in range(number):
                step()
            samples[n].append((time.perf_counter() - t0) / number)
    if against is None:
        base = samples[BASELINE]
    else:  # unpaired: every sample against the earlier run's baseline median
        base = [against["contenders"][BASELINE]["median_s"]] * rounds
    record = {"group": case.group, "name": case.name, "what": case.what, "target": case.target,
              "targets": case.targets, "reported": case.reported, "rounds": rounds, "contenders": {}, "skipped": skipped}
    if case.extra:
        record["extra"] = {n: dict(facts) for n, facts in case.extra.items()}
    for n in names:
        per_round = [s / b for s, b in zip(samples[n], base)]
        q = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
        record["contenders"][n] = {
            "median_s": statistics.median(samples[n]), "min_s": min(samples[n]),
            "ratio": statistics.median(per_round), "ratio_q1": q[0], "ratio_q3": q[-1],
            "calls_per_sample": numbers[n], **({"paired": False} if against is not None else {}),
        }
    del steps, results
    gc.collect()
    return record


def fmt_time(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def table(runs: dict) -> str:
    """The results as a plain-text table, one line per contender and the runs side by side
    (``runs``: a label such as "default threads" -> that run's records): median time, ratio to
    numpy with its interquartile range."""
    labels = list(runs)
    by_name = [{(r["group"], r["name"]): r for r in runs[lab]} for lab in labels]
    head = f"{'case':<28} {'contender':<16}" + "".join(f" {lab:>34}" for lab in labels) + "  target / issue"
    sub = f"{'':<28} {'':<16}" + "".join(f" {'median':>10} {'x numpy':>8} {'(IQR)':>14}" for _ in labels)
    lines = [head, sub]
    for rec in runs[labels[0]]:
        key = (rec["group"], rec["name"])
        first = True
        for n in rec["contenders"]:
            cells, note = "", ""
            for lab, found in zip(labels, by_name):
                c = found.get(key, {}).get("contenders", {}).get(n)
                if c is None:
                    cells += f" {'-':>34}"
                    continue
                iqr = f"({c['ratio_q1']:.2f}-{c['ratio_q3']:.2f})"
                cells += f" {fmt_time(c['median_s']):>10} {c['ratio']:>8.2f} {iqr:>14}"
                goal = rec.get("targets", {}).get(n, rec["target"] if n.startswith("chainrule") else None)
                if goal is not None:
                    note += f"{'' if not note else ', '}<= {goal}x: {'ok' if c['ratio'] <= goal else 'MISSED'}"
            if not note and n in rec["reported"]:
                note = f"issue measured {rec['reported'][n]}x"
            facts = rec.get("extra", {}).get(n, {})
            if facts:
                note += ("" if not note else ", ") + ", ".join(f"{k} {v}" for k, v in facts.items())
            case = f"{rec['group']}/{rec['name']}" if first else ""
            lines.append(f"{case:<28} {n:<16}{cells}  {note}")
            first = False
        for lab, found in zip(labels, by_name):
            for n, why in found.get(key, {}).get("skipped", {}).items():
                lines.append(f"{'':<28} {n:<16} skipped at {lab}: {why}")
    return "\n".join(lines)
