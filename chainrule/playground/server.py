"""The playground's web app: the page, its static files and one WebSocket per browser tab.

Protocol (client -> server, JSON text; every field checked, unknown ones refused):

* ``{"type": "config", "config": {...}}``  change settings (see ``session.SCHEMA``)
* ``{"type": "step", "n": 1..1000}``       train n mini-batch steps, then send a frame
* ``{"type": "reset"}`` / ``{"type": "regenerate"}`` / ``{"type": "frame"}``
* ``{"type": "upload", "csv": "x1,x2,label\\n..."}``  own 2-D data (at most 256 KiB, 5000 rows)
* ``{"type": "set_weight", "layer": l, "to": i, "from": j, "value": w}``
* ``{"type": "explain", "index": k}``      one training example's forward/backward step
* ``{"type": "diagnostics"}``              per-layer gradient norms and saturated/dead units

Server -> client: JSON ``{"type": "config" | "data" | "error" | "explain" | "diagnostics", ...}`` and binary
frames: a little-endian uint32 header length, the JSON header (padded with spaces to a multiple
of 4 bytes), then float32 arrays, named in order by the header's "arrays": the GRID x GRID output
map ("boundary"; with more than two classes the predicted class, and "confidence" its
probability), one map per unit ("maps"), and with ``compare_init`` set, the second network's
output map ("twin_boundary", "twin_confidence"; its losses are in the header's "twin").
A bad message gets ``{"type": "error", "message": ...}`` and the connection stays open.
Nothing a client sends is evaluated: JSON is parsed, numbers checked, CSV cells go to float().
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from chainrule.playground.session import GRID, MAX_CSV_BYTES, ConfigError, Session

__all__ = ["create_app", "encode_frame", "SESSIONS", "MAX_MESSAGE_BYTES"]

STATIC = Path(__file__).parent / "static"
MAX_MESSAGE_BYTES = 2 * MAX_CSV_BYTES + 4096  # the largest message is an upload (JSON escapes add up to 2x)
MAX_STEPS = 1000
# The live sessions, one per open WebSocket: a tab that closes removes its own.
SESSIONS: dict[int, Session] = {}
# Each tab holds a model and its data: more than this many open at once is refused (code 1013).
MAX_SESSIONS = 32

# message type -> the fields it takes besides "type"
MESSAGES = {
    "config": {"config"}, "step": {"n"}, "reset": set(), "regenerate": set(), "frame": set(),
    "upload": {"csv"}, "set_weight": {"layer", "to", "from", "value"}, "explain": {"index"},
    "diagnostics": set(),
}


ARRAYS = ("boundary", "confidence", "maps", "twin_boundary", "twin_confidence")


def encode_frame(frame: dict) -> bytes:
    """A frame as bytes: uint32 header length, JSON header, float32 boundary and unit maps
    (the header's "arrays" names those present, in order; "maps" holds n_maps maps)."""
    arrays = [k for k in ARRAYS if k in frame]
    header = {k: v for k, v in frame.items() if k not in ARRAYS}
    header.update(type="frame", grid=GRID, n_maps=len(frame["maps"]), arrays=arrays)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # the float32 data start 4-byte aligned
    return b"".join([struct.pack("<I", len(text)), text,
                     *(frame[k].astype("<f4", copy=False).data for k in arrays)])


def _parse(text):
    if len(text) > MAX_MESSAGE_BYTES:
        raise ConfigError(f"message is {len(text)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"message is not valid JSON: {err}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ConfigError('a message must be a JSON object with a string "type"')
    kind = msg["type"]
    if kind not in MESSAGES:
        raise ConfigError(f"unknown message type {kind!r}; valid: {', '.join(MESSAGES)}")
    given = set(msg) - {"type"}
    if given != MESSAGES[kind]:
        missing, extra = MESSAGES[kind] - given, given - MESSAGES[kind]
        raise ConfigError(f"{kind}: " + "; ".join(
            ([f"missing {', '.join(sorted(missing))}"] if missing else [])
            + ([f"unknown field(s) {', '.join(sorted(extra))}"] if extra else [])))
    return msg


def _explain(session, index):
    """One training example's SGD step, traced by ``cr.viz.explain_step`` on a copy of the model
    (the session's weights do not change): its pages (html, text) and, for the diagram, its
    numbers by layer. ``layers[0]`` is the input (value x, adjoint dJ/dx); ``layers[l]`` a hidden
    layer (pre a_l, value z_l, adjoint dJ/dz_l, delta dJ/da_l); the last the output scores s (with
    prob, the prediction y_hat: softmax(s), sigmoid(s), or s for the quadratic loss).
    ``links[l - 1]`` holds W_l, b_l, their gradients and new values; ``yhat_rule``, ``loss_rule``
    and ``ds_rule`` say in words how y_hat, J and dJ/ds come from s for this loss."""
    import copy

    from chainrule.viz import explain_step

    X, y = session._data[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(X):
        raise ConfigError(f"index must be an integer in [0, {len(X) - 1}], got {index!r}")
    loss = _STEP_LOSSES[session.config["loss"]]
    # the target as the session trains on it: a class label, or a number (quadratic: -1/+1 on classes)
    target = float(y[index]) if loss == "mse" else int(y[index])
    step = explain_step(copy.deepcopy(session.model), X[index], target, lr=session.config["learning_rate"],
                        loss=loss)
    plain = lambda v: np.asarray(v, dtype=np.float64).tolist()  # noqa: E731  (float32 -> float64 is exact)
    hidden = len(session.model.layers) - 1
    layers = [{"name": "x", "value": plain(step.value("x")), "adjoint": plain(step.grad("x"))}]
    for l in range(1, hidden + 1):
        suffix = "" if hidden == 1 else str(l)  # explain_step's names: a, z for one hidden layer
        a = "a" + suffix
        z = "z" + suffix if "z" + suffix in step.graph else a  # an identity activation adds no z
        layers.append({"name": z, "pre": plain(step.value(a)), "value": plain(step.value(z)),
                       "adjoint": plain(step.grad(z)), "delta": plain(step.grad(a))})
    s, g = plain(step.value("s")), plain(step.grad("s"))
    y_hat = plain(step.value("y_hat")) if "y_hat" in step.graph else s  # quadratic: the scores are y_hat
    layers.append({"name": "s", "pre": s, "value": s, "adjoint": g, "delta": g, "prob": y_hat})
    rows = {short: (old, grad, new) for short, _, old, grad, new in step.params}
    links = []
    for l in range(1, hidden + 2):
        w, b = rows[f"W{l}"], rows.get(f"b{l}")
        links.append({"weight": plain(w[0]), "grad": plain(w[1]), "new": plain(w[2]),
                      **({"bias": plain(b[0]), "bias_grad": plain(b[1])} if b is not None else {})})
    t = f"{step.y:g}" if loss == "mse" else step.y
    rules = {"cross_entropy": ("softmax(s)", f"\u2212log \u0177[{t}]", f"\u0177 \u2212 onehot({t})"),
             "bce_logits": ("\u03c3(s)", f"\u2212[y log \u0177 + (1 \u2212 y) log(1 \u2212 \u0177)], y = {t}",
                            f"\u0177 \u2212 y = \u0177 \u2212 {t}"),
             "mse": ("s", f"mean of (s \u2212 y)\u00b2, y = {t}", "2 (s \u2212 y) / K")}[loss]
    prediction = step.prediction if loss != "mse" else plain(step.prediction)
    return {"type": "explain", "index": index, "label": t, "prediction": prediction, "loss": step.loss,
            "lr": step.lr, "layers": layers, "links": links, "html": step.render("html"), "text": step.render("text"),
            "yhat_rule": rules[0], "loss_rule": rules[1], "ds_rule": rules[2]}


# The playground's losses as explain_step traces them (the same functions cr.fit trains with)
_STEP_LOSSES = {"softmax_ce": "cross_entropy", "bce": "bce_logits", "quadratic": "mse"}


async def _handle(ws, session, msg):
    kind = msg["type"]
    if kind == "config":
        if session.configure(msg["config"]):
            await ws.send_json(session.data_message())
        await ws.send_json({"type": "config", "config": session.config})
    elif kind == "step":
        n = msg["n"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS:
            raise ConfigError(f"step: n must be an integer in [1, {MAX_STEPS}], got {n!r}")
        # Training runs in a worker thread: the event loop keeps serving the other tabs meanwhile
        # (grad mode is per thread, so the sessions do not disturb each other).
        await run_in_threadpool(session.step, n)
    elif kind == "reset":
        session.reset()
    elif kind == "regenerate":
        session.regenerate()
        await ws.send_json(session.data_message())
        await ws.send_json({"type": "config", "config": session.config})
    elif kind == "upload":
        session.upload(msg["csv"])
        await ws.send_json(session.data_message())
        await ws.send_json({"type": "config", "config": session.config})
    elif kind == "set_weight":
        session.set_weight(msg["layer"], msg["to"], msg["from"], msg["value"])
    elif kind == "explain":
        await ws.send_json(_explain(session, msg["index"]))
        return
    elif kind == "diagnostics":
        await ws.send_json({"type": "diagnostics", "layers": session.diagnostics()})
        return
    await ws.send_bytes(encode_frame(session.frame()))


def _same_origin(ws: WebSocket) -> bool:
    """A browser says which page opened the socket: only the playground's own page may (another
    site open in the same browser must not drive the local server); clients that send no Origin
    are not browsers and are let in."""
    origin = ws.headers.get("origin")
    return origin is None or urlparse(origin).netloc == ws.headers.get("host")


async def playground_socket(ws: WebSocket):
    if not _same_origin(ws):
        await ws.close(code=1008)  # policy violation
        return
    if len(SESSIONS) >= MAX_SESSIONS:
        await ws.close(code=1013)  # try again later
        return
    await ws.accept()
    key = id(ws)
    try:
        session = SESSIONS[key] = Session()
        await ws.send_json({"type": "config", "config": session.config})
        await ws.send_json(session.data_message())
        await ws.send_bytes(encode_frame(session.frame()))
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                if message.get("text") is None:
                    raise ConfigError("messages must be JSON text, not binary")
                await _handle(ws, session, _parse(message["text"]))
            except (ConfigError, ValueError, TypeError) as err:
                # TrainingError (a diverged loss) is a ValueError too: the client pauses and says so.
                await ws.send_json({"type": "error", "message": str(err)})
    except WebSocketDisconnect:
        pass
    finally:
        SESSIONS.pop(key, None)


async def index(request):
    return FileResponse(STATIC / "index.html", media_type="text/html")


def create_app() -> Starlette:
    """The ASGI app: ``/`` the page, ``/static`` its scripts and styles, ``/ws`` the socket."""
    return Starlette(routes=[
        Route("/", index),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        WebSocketRoute("/ws", playground_socket),
    ])
