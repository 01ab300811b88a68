"""Playground (issue 14): the server's time per frame, the budget being 10 ms (30+ frames a second).

    python benchmarks/bench_playground.py              # the issue's frame, 200 frames, median
    python benchmarks/bench_playground.py --frames 500 --hidden 8 8 8 8 8 8 --points 500
    python benchmarks/bench_playground.py --classes 5      # 5 spiral arms, softmax cross-entropy

A frame is what the server does for each picture it sends while playing: 10 training steps
(mini-batches of 10) of a 6x8 tanh network with binary cross-entropy, on 500 training points
(features x1, x2), then the 64x64 output map, every unit's 64x64 map, the train and test
loss, and the binary message (``encode_frame``). Timed per frame with one BLAS thread (the
CLI's default for networks this size); the parts too: train (the 10 steps), draw (``frame()``:
losses, errors and maps), encode. Median over frames, after 20 warm-up frames.
With ``--classes K`` (3..6) the data are K spiral arms and the loss softmax cross-entropy (K
outputs): the frame then carries the predicted class and its probability, not one output map.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(frames, hidden, points, steps, classes=2):
    from chainrule.core.threads import blas_threads
    from chainrule.playground.server import encode_frame
    from chainrule.playground.session import Session

    # n is the whole set; train_ratio 0.5 leaves `points` training and `points` test points.
    s = Session({"dataset": "spiral", "hidden": hidden, "n": 2 * points, "train_ratio": 0.5, "classes": classes,
                 "loss": "softmax_ce" if classes > 2 else "bce"})
    parts = {"frame": [], "train": [], "draw": [], "encode": []}
    with blas_threads(threads=1):
        for i in range(frames + 20):
            t0 = time.perf_counter()
            s.step(steps)
            t1 = time.perf_counter()
            f = s.frame()  # losses, errors, output map, unit maps
            t2 = time.perf_counter()
            encode_frame(f)
            t3 = time.perf_counter()
            if i < 20:
                continue
            parts["frame"].append(t3 - t0)
            parts["train"].append(t1 - t0)
            parts["draw"].append(t2 - t1)
            parts["encode"].append(t3 - t2)
    return {k: round(statistics.median(v) * 1000, 3) for k, v in parts.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="*", default=[8] * 6)
    p.add_argument("--points", type=int, default=500, help="training points (as many test points)")
    p.add_argument("--steps", type=int, default=10, help="training steps per frame")
    p.add_argument("--classes", type=int, default=2, choices=range(2, 7), help="classes (3..6: softmax)")
    args = p.parse_args(argv)
    ms = measure(args.frames, args.hidden, args.points, args.steps, args.classes)
    print(json.dumps({"hidden": args.hidden, "points": args.points, "steps": args.steps, "classes": args.classes,
                      "median_ms": ms, "budget_ms": 10.0, "within_budget": ms["frame"] <= 10.0}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
