"""The playground's session and server: HTTP, the WebSocket protocol, validation, the registry."""
import gc
import json
import re
import struct
import tracemalloc
import warnings

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # newer Starlette prefers httpx2 to httpx; both work
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule.playground import server  # noqa: E402
from chainrule.playground.session import GRID, MAX_CSV_BYTES, ConfigError, Session, parse_csv  # noqa: E402


def decode_all(blob):
    """A frame's header and its arrays by the names the header lists."""
    (n,) = struct.unpack("<I", blob[:4])
    header = json.loads(blob[4:4 + n])
    floats = np.frombuffer(blob[4 + n:], dtype="<f4").reshape(-1, GRID, GRID)
    arrays, at = {}, 0
    for name in header["arrays"]:
        count = header["n_maps"] if name == "maps" else 1
        arrays[name] = floats[at:at + count] if name == "maps" else floats[at]
        at += count
    assert at == len(floats)
    return header, arrays


def decode(blob):
    (n,) = struct.unpack("<I", blob[:4])
    header = json.loads(blob[4:4 + n])
    floats = np.frombuffer(blob[4 + n:], dtype="<f4")
    return header, floats[:GRID * GRID].reshape(GRID, GRID), floats[GRID * GRID:].reshape(-1, GRID, GRID)


@pytest.fixture
def client():
    with TestClient(server.create_app()) as c:
        yield c


def opened(ws):
    """Read the three messages a new connection gets: config, data, first frame."""
    config = ws.receive_json()
    data = ws.receive_json()
    frame = decode(ws.receive_bytes())
    assert config["type"] == "config" and data["type"] == "data"
    return config["config"], data, frame


def test_page_and_static_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for testid in ("play", "pause", "step", "reset", "dataset", "loss", "activation", "init", "learning-rate",
                   "hidden-layers", "train-loss", "test-loss", "epoch", "boundary", "network",
                   "classes", "legend", "step-forward", "step-backward", "step-stage", "weight-trace"):
        assert f'data-testid="{testid}"' in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # offline: no script or style from another host
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/../session.py").status_code == 404


def test_frame_holds_losses_the_boundary_and_every_unit_map(client):
    with client.websocket_connect("/ws") as ws:
        config, data, (header, boundary, maps) = opened(ws)
        assert config["hidden"] == [4, 2] and data["task"] == "classification"
        assert maps.shape == (len(config["features"]) + 6, GRID, GRID)
        assert np.abs(boundary).max() <= 1
        ws.send_json({"type": "step", "n": 20})
        after, _, _ = decode(ws.receive_bytes())
        assert after["step"] == 20 and after["epoch"] == pytest.approx(20 * 10 / len(data["train"]), abs=1e-3)
        assert [np.shape(w) for w in after["weights"]] == [(4, 2), (2, 4), (1, 2)]


def test_session_trains_with_chainrule_and_lowers_the_test_loss():
    s = Session({"dataset": "circle", "hidden": [8], "learning_rate": 0.1, "optimizer": "adam", "n": 300})
    before = s.losses()[1]
    s.step(200)
    assert s.losses()[1] < 0.5 * before
    # The boundary is the model's own output: 2 sigmoid(z) - 1 at the grid points.
    f = s.frame()
    X = s._grid_features[:3]
    z = np.asarray(s.model(X).data)[:, 0]
    assert np.allclose(f["boundary"].ravel()[:3], 2 / (1 + np.exp(-z)) - 1, atol=1e-6)


def test_many_steps_at_once_draw_the_batches_of_as_many_single_steps():
    # step(n) takes its n batches from whole shuffled epochs, in order, as n calls of step(1) do
    # (here 25 batches of 7 from 40 training points: the queue runs over five epochs and keeps the rest)
    config = {"dataset": "circle", "hidden": [3], "n": 50, "train_ratio": 0.8, "batch_size": 7}
    many, single = Session(config), Session(config)
    many.step(25)
    for _ in range(25):
        single.step(1)
    assert many.seen == single.seen == 175 and len(many._queue) == len(single._queue) == 200 - 175
    assert np.array_equal(many._queue, single._queue)
    for a, b in zip(many.model.parameters(), single.model.parameters()):
        assert np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["quadratic", "bce", "softmax_ce"])
@pytest.mark.parametrize("dataset", ["xor", "plane"])
def test_every_loss_and_task_steps(loss, dataset):
    s = Session({"dataset": dataset, "loss": loss, "hidden": [3], "n": 60, "optimizer": "adam",
                 "regularization": "l1", "reg_rate": 0.01})
    s.step(3)
    f = s.frame()
    assert np.isfinite(f["train_loss"]) and s.config["loss"] == (loss if dataset == "xor" else "quadratic")


def test_regularization_is_in_the_training_loss():
    plain = Session({"hidden": [3], "n": 50})
    l2 = Session({"hidden": [3], "n": 50, "regularization": "l2", "reg_rate": 0.5})
    X, y = plain._data[0]
    w = [np.asarray(l.weight.data) for l in plain.model.layers]
    extra = float(np.asarray(l2._loss_fn(l2.model(X), y).data)) - float(np.asarray(plain._loss_fn(plain.model(X), y).data))
    assert extra == pytest.approx(0.5 * 0.5 * sum((a * a).sum() for a in w))


def test_zero_init_keeps_units_of_a_layer_equal():
    s = Session({"init": "zeros", "hidden": [4], "loss": "bce"})
    s.step(50)
    maps = s.frame()["maps"][2:]
    assert np.allclose(maps, maps[0])  # the symmetry trap: every hidden unit computes the same


BAD = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": 5}', "JSON object"),
    ('{"type": "launch"}', "unknown message type"),
    ('{"type": "step"}', "missing n"),
    ('{"type": "step", "n": 1, "x": 2}', "unknown field"),
    ('{"type": "step", "n": 0}', "n must be an integer in [1, 1000]"),
    ('{"type": "step", "n": 1001}', "[1, 1000]"),
    ('{"type": "step", "n": true}', "integer"),
    ('{"type": "step", "n": "5"}', "integer"),
    ('{"type": "config", "config": []}', "config must be an object"),
    ('{"type": "config", "config": {"dataset": "moons"}}', "dataset must be one of"),
    ('{"type": "config", "config": {"learning_rate": -1}}', "learning_rate must be in"),
    ('{"type": "config", "config": {"learning_rate": "__import__(\'os\')"}}', "learning_rate must be a number"),
    ('{"type": "config", "config": {"n": 2.5}}', "n must be an integer"),
    ('{"type": "config", "config": {"n": 1000000}}', "n must be in"),
    ('{"type": "config", "config": {"hidden": [4, 0]}}', "hidden must be a list"),
    ('{"type": "config", "config": {"hidden": [1, 1, 1, 1, 1, 1, 1, 1, 1]}}', "at most 8"),
    ('{"type": "config", "config": {"hidden": [100]}}', "[1, 16]"),
    ('{"type": "config", "config": {"features": []}}', "non-empty"),
    ('{"type": "config", "config": {"features": ["x1", "x1"]}}', "distinct"),
    ('{"type": "config", "config": {"features": ["exp(x1)"]}}', "features must be"),
    ('{"type": "config", "config": {"colour": "red"}}', "unknown setting"),
    ('{"type": "config", "config": {"dataset": "custom"}}', "uploaded CSV first"),
    ('{"type": "config", "config": {"noise": NaN}}', "noise must be a number"),
    ('{"type": "set_weight", "layer": 9, "to": 0, "from": 0, "value": 1}', "layer must be"),
    ('{"type": "set_weight", "layer": 0, "to": 4, "from": 0, "value": 1}', "to must be"),
    ('{"type": "set_weight", "layer": 0, "to": 0, "from": 0, "value": 1e9}', "value must be"),
    ('{"type": "explain", "index": -1}', "index must be"),
    ('{"type": "explain", "index": 1000}', "index must be"),
    ('{"type": "upload", "csv": 5}', "csv must be a string"),
    ('{"type": "upload", "csv": "1,2,0\\n1,2\\n3,4,1\\n5,6,0\\n"}', "row 2: expected 3 values"),
    ('{"type": "upload", "csv": "1,2,0\\n1,2,x\\n3,4,1\\n5,6,0\\n"}', "row 2: not a number"),
    ('{"type": "upload", "csv": "1,2,0\\n"}', "at least 4"),
    ('{"type": "upload", "csv": "1,2,0\\n1,inf,1\\n3,4,1\\n5,6,0\\n"}', "finite"),
]


def test_every_bad_message_gets_an_error_and_the_connection_keeps_working(client):
    with client.websocket_connect("/ws") as ws:
        config, _, _ = opened(ws)
        for text, expected in BAD:
            ws.send_text(text)
            reply = ws.receive_json()
            assert reply["type"] == "error" and expected in reply["message"], (text, reply)
        ws.send_bytes(b"\x00\x01")
        assert "not binary" in ws.receive_json()["message"]
        ws.send_json({"type": "frame"})
        header, _, _ = decode(ws.receive_bytes())
        assert header["step"] == 0
        ws.send_json({"type": "config", "config": {}})  # nothing changed by any bad message
        assert ws.receive_json()["config"] == config


def test_upload_size_limit_and_csv_data(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        big = "0.5,0.5,1\n" * (MAX_CSV_BYTES // 10 + 1)
        ws.send_json({"type": "upload", "csv": big})
        assert "256 KiB" in ws.receive_json()["message"]
        ws.send_text(json.dumps({"type": "upload", "csv": big * 2}))
        assert "limit" in ws.receive_json()["message"]
        rows = "x1,x2,label\n" + "".join(f"{x},{y},{int(x * y > 0)}\n" for x, y in
                                         np.random.default_rng(0).uniform(-3, 3, (40, 2)))
        ws.send_json({"type": "upload", "csv": rows})
        data = ws.receive_json()
        assert data["type"] == "data" and len(data["train"]) + len(data["test"]) == 40
        assert max(abs(v) for p in data["train"] + data["test"] for v in p[:2]) == pytest.approx(1, abs=1e-4)
        assert ws.receive_json()["config"]["dataset"] == "custom"
        decode(ws.receive_bytes())
        ws.send_json({"type": "step", "n": 2})
        assert decode(ws.receive_bytes())[0]["step"] == 2


def test_parse_csv_reads_regression_targets():
    X, y, k = parse_csv("1,0,0.25\n0,2,1.5\n-1,1,0\n2,2,3\n")
    assert X.max() == 1 and y.tolist() == [0.25, 1.5, 0, 3] and k is None
    # whole numbers that are not the labels 0..K-1 of a classification set: a regression target
    assert parse_csv("1,0,0\n0,2,2\n-1,1,0\n2,2,7\n")[2] is None
    assert parse_csv("x,y,target\n1,0,0\n0,2,1\n-1,1,2\n2,2,1\n")[2] is None
    with pytest.raises(ConfigError, match="row 1"):
        parse_csv("1,2,3,4\n1,2,3\n1,2,3\n1,2,3\n")


def test_controls_change_the_model_and_set_weight_edits_one_weight(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"hidden": [3, 3, 3], "activation": "relu", "init": "he"}})
        assert ws.receive_json()["config"]["hidden"] == [3, 3, 3]
        header, _, maps = decode(ws.receive_bytes())
        assert len(header["weights"]) == 4 and maps.shape[0] == 2 + 9
        ws.send_json({"type": "set_weight", "layer": 1, "to": 2, "from": 0, "value": -1.5})
        header, _, _ = decode(ws.receive_bytes())
        assert header["weights"][1][2][0] == -1.5
        ws.send_json({"type": "config", "config": {"dataset": "spiral"}})
        assert ws.receive_json()["type"] == "data"


def test_explain_matches_cr_viz_explain_step(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"loss": "softmax_ce", "hidden": [3]}})
        ws.receive_json(), ws.receive_bytes()
        ws.send_json({"type": "explain", "index": 4})
        reply = ws.receive_json()
    # The same numbers from a model with the same weights, traced directly.
    s = Session({"loss": "softmax_ce", "hidden": [3]})
    X, y = s._data[0]
    step = cr.viz.explain_step(s.model, X[4], int(y[4]), lr=s.config["learning_rate"])
    assert reply["loss"] == pytest.approx(step.loss) and reply["text"] == step.render("text")


def test_connections_free_their_sessions():
    """Many connect/disconnect cycles leave no session and no growing memory behind."""
    with TestClient(server.create_app()) as client:
        def cycle(k):
            for _ in range(k):
                with client.websocket_connect("/ws") as ws:
                    opened(ws)
                    ws.send_json({"type": "step", "n": 1})
                    ws.receive_bytes()
        cycle(20)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        cycle(1000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        assert server.SESSIONS == {}
        # One session holds well over 300 KB (data, grid features, maps); 1,000 leaked would be 300 MB.
        assert grown < 2_000_000, grown


def test_cli_refuses_a_bad_port(capsys):
    from chainrule.cli import main

    assert main(["playground", "--port", "70000", "--no-browser"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err


def test_doctests():
    import doctest

    from chainrule.playground import session

    assert doctest.testmod(session).failed == 0


def test_diagnostics_show_vanishing_gradients_and_frames_carry_the_error(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"activation": "sigmoid", "hidden": [8, 8, 8, 8, 8]}})
        ws.receive_json()
        header, _, _ = decode(ws.receive_bytes())
        assert 0 <= header["train_error"] <= 1 and 0 <= header["test_error"] <= 1
        ws.send_json({"type": "diagnostics"})
        layers = ws.receive_json()["layers"]
    assert [r["layer"] for r in layers] == [1, 2, 3, 4, 5, 6]
    assert layers[0]["grad_norm"] < 1e-2 * layers[-1]["grad_norm"]  # each sigmoid: at most 1/4
    assert all(0 <= r["saturated"] <= 1 for r in layers[:-1])


def test_classification_error_is_the_share_of_wrong_signs():
    s = Session({"dataset": "gaussians", "hidden": [4], "optimizer": "adam", "learning_rate": 0.05})
    s.step(200)
    f = s.frame()
    X, y = s.points[0], s.points[1]
    out = np.asarray(s.model(s._data[0][0]).data)[:, 0]
    assert f["train_error"] == pytest.approx(np.mean((out > 0) != (y == 1))) and f["train_error"] < 0.1
    assert Session({"dataset": "plane"}).frame()["train_error"] is None


def test_side_by_side_init_trains_a_second_network_on_the_same_batches(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"compare_init": "zeros", "hidden": [4, 4]}})
        ws.receive_json()
        decode(ws.receive_bytes())
        ws.send_json({"type": "step", "n": 50})
        blob = ws.receive_bytes()
    header, boundary, rest = decode(blob)
    assert header["twin"]["init"] == "zeros" and rest.shape[0] == header["n_maps"] + 1
    # The twin is the same setup with zeros: its own session, trained alone, gives the same output.
    alone = Session({"init": "zeros", "hidden": [4, 4]})
    alone.step(50)
    f = alone.frame()
    assert np.allclose(rest[-1], f["boundary"]) and header["twin"]["train_loss"] == pytest.approx(f["train_loss"])


def test_each_connection_has_its_own_model(client):
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        opened(a), opened(b)
        assert len(server.SESSIONS) == 2
        a.send_json({"type": "config", "config": {"hidden": [3]}})
        a.receive_json(), a.receive_bytes()
        b.send_json({"type": "step", "n": 7})
        hb, _, _ = decode(b.receive_bytes())
        a.send_json({"type": "frame"})
        ha, _, _ = decode(a.receive_bytes())
    assert (len(ha["weights"]), ha["step"]) == (2, 0) and (len(hb["weights"]), hb["step"]) == (3, 7)
    assert server.SESSIONS == {}


def test_one_activation_per_layer(client):
    s = Session({"hidden": [3, 2], "activations": ["relu", "sigmoid"]})
    assert [type(a).__name__ for a in s.model.activations] == ["ReLU", "Sigmoid"]
    with pytest.raises(ConfigError, match="2 given for 3 hidden layers"):
        Session({"hidden": [3, 3, 3], "activations": ["relu", "sigmoid"]})
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"activations": ["relu"]}})
        assert "1 given for 2 hidden layers" in ws.receive_json()["message"]
        ws.send_json({"type": "config", "config": {"activations": ["relu", "eval"]}})
        assert "activations must be a list" in ws.receive_json()["message"]
        ws.send_json({"type": "config", "config": {"hidden": [5], "activations": ["sigmoid"]}})
        assert ws.receive_json()["config"]["activations"] == ["sigmoid"]
        header, _, maps = decode(ws.receive_bytes())
    assert maps.shape[0] == 2 + 5 and maps[2:].min() >= 0  # sigmoid outputs


def test_other_sites_and_too_many_tabs_are_refused(monkeypatch):
    """A page of another site in the same browser cannot drive the local server, and the number of
    open sessions is bounded."""
    from starlette.websockets import WebSocketDisconnect

    with TestClient(server.create_app()) as client:
        with pytest.raises(WebSocketDisconnect) as err:
            with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as ws:
                ws.receive_json()
        assert err.value.code == 1008
        with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "config"
        monkeypatch.setattr(server, "MAX_SESSIONS", 0)
        with pytest.raises(WebSocketDisconnect) as err:
            with client.websocket_connect("/ws") as ws:
                ws.receive_json()
        assert err.value.code == 1013


# ---------------------------------------------------------------- more than two classes
@pytest.mark.parametrize("dataset", ["gaussians", "spiral", "circle"])
def test_multiclass_sets_have_k_balanced_classes(dataset):
    s = Session({"dataset": dataset, "classes": 4, "loss": "softmax_ce", "n": 200, "noise": 0})
    labels = np.concatenate([s.points[1], s.points[3]]).astype(int)
    assert np.bincount(labels).tolist() == [50] * 4 and s.classes == 4
    assert s.model.layers[-1].out_features == 4
    assert np.abs(np.concatenate([s.points[0], s.points[2]])).max() <= 1.0


def test_multiclass_frame_sends_the_argmax_and_its_probability(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"dataset": "gaussians", "classes": 5, "loss": "softmax_ce",
                                                   "hidden": [6], "optimizer": "adam", "learning_rate": 0.03}})
        data = ws.receive_json()
        assert data["type"] == "data" and data["classes"] == 5
        assert sorted({int(p[2]) for p in data["train"]}) == [0, 1, 2, 3, 4]
        assert ws.receive_json()["config"]["classes"] == 5
        header, arrays = decode_all(ws.receive_bytes())
        assert header["arrays"] == ["boundary", "confidence", "maps"] and header["classes"] == 5
        first_error = header["train_error"]
        ws.send_json({"type": "step", "n": 300})
        header, arrays = decode_all(ws.receive_bytes())
        weights = header["weights"]
    # the same weights in a model of our own: the maps are its argmax and largest softmax probability
    s = Session({"dataset": "gaussians", "classes": 5, "loss": "softmax_ce", "hidden": [6]})
    for layer, w, b in zip(s.model.layers, weights, header["biases"]):
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    out = np.asarray(s.model(s._grid_features).data, dtype=np.float64)
    p = np.exp(out - out.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.array_equal(arrays["boundary"].ravel(), p.argmax(axis=1))
    assert np.allclose(arrays["confidence"].ravel(), p.max(axis=1), atol=1e-5)
    assert arrays["confidence"].min() >= 1 / 5 - 1e-6
    # the error is the share of misclassified points (argmax against the label)
    X, y = s._data[0]
    wrong = np.mean(np.asarray(s.model(X).data).argmax(axis=1) != s.points[1])
    assert header["train_error"] == pytest.approx(wrong) and header["train_error"] < min(0.1, first_error)


def test_multiclass_settings_are_checked_and_the_connection_keeps_working(client):
    with client.websocket_connect("/ws") as ws:
        config, _, _ = opened(ws)
        for change, expected in (({"classes": 7}, "classes must be in [2, 6]"),
                                 ({"classes": 1}, "classes must be in [2, 6]"),
                                 ({"classes": "3"}, "classes must be an integer"),
                                 ({"classes": 3.5}, "classes must be an integer"),
                                 ({"classes": True}, "classes must be an integer"),
                                 ({"classes": 3}, "3 classes need softmax_ce"),
                                 ({"classes": 3, "loss": "quadratic"}, "3 classes need softmax_ce"),
                                 ({"dataset": "xor", "classes": 4, "loss": "softmax_ce"}, "xor has 2 classes")):
            ws.send_json({"type": "config", "config": change})
            reply = ws.receive_json()
            assert reply["type"] == "error" and expected in reply["message"], (change, reply)
        ws.send_json({"type": "config", "config": {}})
        assert ws.receive_json()["config"] == config  # nothing changed
        ws.receive_bytes()
        ws.send_json({"type": "config", "config": {"dataset": "spiral", "classes": 3, "loss": "softmax_ce"}})
        assert ws.receive_json()["classes"] == 3
        ws.receive_json()
        ws.receive_bytes()
        ws.send_json({"type": "config", "config": {"loss": "bce"}})
        assert "3 classes need softmax_ce" in ws.receive_json()["message"]
        # a regression set has no classes: the setting is kept for the next classification set
        ws.send_json({"type": "config", "config": {"dataset": "plane"}})
        data = ws.receive_json()
        assert data["task"] == "regression" and data["classes"] is None
        assert ws.receive_json()["config"]["loss"] == "quadratic"
        header, _, _ = decode(ws.receive_bytes())
        assert header["arrays"] == ["boundary", "maps"] and header["train_error"] is None


def test_csv_with_three_labels_trains_with_softmax(client):
    rng = np.random.default_rng(3)
    labels = np.arange(60) % 3
    points = np.column_stack([np.cos(2 * np.pi * labels / 3), np.sin(2 * np.pi * labels / 3)]) * 4
    points += 0.5 * rng.standard_normal((60, 2))
    rows = "x1,x2,label\n" + "".join(f"{x},{y},{c}\n" for (x, y), c in zip(points, labels))
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "upload", "csv": rows})
        data = ws.receive_json()
        assert data["classes"] == 3 and data["task"] == "classification"
        config = ws.receive_json()["config"]
        assert config["dataset"] == "custom" and config["loss"] == "softmax_ce"  # bce cannot score 3 classes
        header, arrays = decode_all(ws.receive_bytes())
        assert "confidence" in arrays and set(np.unique(arrays["boundary"])) <= {0, 1, 2}
        ws.send_json({"type": "step", "n": 5})
        assert decode_all(ws.receive_bytes())[0]["step"] == 5


@pytest.mark.parametrize("csv, expected", [
    ("x1,x2,label\n0,0,0\n1,1,1\n2,2,7\n3,3,1\n", "row 3: label 7 is out of range: class labels are whole numbers 0..5"),
    ("x1,x2,label\n0,0,0\n1,1,1\n2,2,-1\n3,3,1\n", "row 3: label -1 is out of range"),
    ("x1,x2,class\n0,0,0\n1,1,0.5\n2,2,1\n3,3,1\n", "row 2: label 0.5 is out of range"),
    ("x1,x2,label\n0,0,0\n1,1,2\n2,2,2\n3,3,0\n", "class 1 has no points"),
])
def test_csv_labels_out_of_range_are_refused(client, csv, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_csv(csv)
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "upload", "csv": csv})
        reply = ws.receive_json()
        assert reply["type"] == "error" and expected in reply["message"]
        ws.send_json({"type": "frame"})
        assert decode(ws.receive_bytes())[0]["step"] == 0


@pytest.mark.parametrize("hidden, activation", [([3], "tanh"), ([2, 2], "identity"), ([], "tanh")])
def test_explain_sends_each_layers_numbers_for_the_diagram(client, hidden, activation):
    """The step view's numbers by layer (values, adjoints, deltas; the links' gradients and new
    weights) are explain_step's, for 4 classes, one or two hidden layers, and none."""
    setup = {"dataset": "gaussians", "classes": 4, "loss": "softmax_ce", "hidden": hidden, "activation": activation}
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": setup})
        ws.receive_json(), ws.receive_json(), ws.receive_bytes()
        ws.send_json({"type": "explain", "index": 3})
        reply = ws.receive_json()
        ws.send_json({"type": "explain", "index": True})  # a bad index: an error, the socket stays
        assert "index must be an integer" in ws.receive_json()["message"]
    s = Session(setup)
    X, y = s._data[0]
    step = cr.viz.explain_step(s.model, X[3], int(y[3]), lr=s.config["learning_rate"], update=False)
    names = ["x", *(["z"] if hidden == [3] else ["a1", "a2"] if hidden else []), "s"]
    assert [layer["name"] for layer in reply["layers"]] == names
    assert reply["label"] == int(y[3]) and reply["prediction"] == step.prediction
    for layer in reply["layers"]:
        assert layer["value"] == pytest.approx(step.value(layer["name"]).tolist(), rel=1e-7)
        assert layer["adjoint"] == pytest.approx(step.grad(layer["name"]).tolist(), rel=1e-7)
    assert reply["layers"][-1]["prob"] == pytest.approx(step.value("y_hat").tolist(), rel=1e-7)
    if hidden == [3]:  # tanh: the unit's adjoint and its pre-activation's (delta) differ by tanh'
        z, a = np.array(reply["layers"][1]["value"]), step.value("a")
        assert reply["layers"][1]["pre"] == pytest.approx(a.tolist())
        assert reply["layers"][1]["delta"] == pytest.approx((np.array(reply["layers"][1]["adjoint"]) * (1 - z * z)).tolist(), rel=1e-5)
    assert len(reply["links"]) == len(hidden) + 1
    for l, link in enumerate(reply["links"], start=1):
        assert np.array(link["grad"]) == pytest.approx(step.grad(f"W{l}"), rel=1e-7)
        assert np.array(link["new"]) == pytest.approx(np.array(link["weight"]) - step.lr * step.grad(f"W{l}"), rel=1e-6)
        assert np.array(link["bias_grad"]) == pytest.approx(step.grad(f"b{l}"), rel=1e-7)


@pytest.mark.parametrize("setup", [{}, {"loss": "quadratic"}, {"dataset": "plane"}],
                         ids=["default-bce", "quadratic-classes", "regression"])
def test_explain_follows_every_loss_of_the_playground(client, setup):
    """The default setup (binary cross-entropy on logits), the quadratic loss on classes (targets
    -1/+1) and regression: the step view's numbers are explain_step's with the loss the session
    trains with, and its gradients those of one step of that loss."""
    import chainrule.nn.functional as F

    with client.websocket_connect("/ws") as ws:
        opened(ws)
        if setup:
            ws.send_json({"type": "config", "config": setup})
            while "bytes" not in ws.receive():  # the config, the data if it changed, then a frame
                pass
        ws.send_json({"type": "explain", "index": 5})
        reply = ws.receive_json()
    assert reply["type"] == "explain", reply
    s = Session(setup)
    X, y = s._data[0]
    loss = {"bce": "bce_logits", "quadratic": "mse"}[s.config["loss"]]
    target = int(y[5]) if loss == "bce_logits" else float(y[5])
    step = cr.viz.explain_step(s.model, X[5], target, lr=s.config["learning_rate"], update=False, loss=loss)
    assert reply["loss"] == pytest.approx(step.loss, rel=1e-6)
    out = reply["layers"][-1]
    assert out["adjoint"] == pytest.approx(step.grad("s").tolist(), rel=1e-6)
    if loss == "bce_logits":
        assert out["prob"] == pytest.approx((1 / (1 + np.exp(-np.array(out["value"])))).tolist(), rel=1e-6)
        assert reply["yhat_rule"] == "\u03c3(s)" and f"y = {target}" in reply["loss_rule"]
    else:
        assert out["prob"] == out["value"] and "(s \u2212 y)" in reply["loss_rule"]
    # the gradients are those of the session's own loss function on that example
    fn = {"bce_logits": F.binary_cross_entropy_with_logits, "mse": F.mse_loss}[loss]
    params = {n: p.data for n, p in s.model.named_parameters()}
    grads = cr.grad(lambda p: fn(cr.nn.functional_call(s.model, p, X[5:6]), y[5:6].reshape(1, 1)))(params)
    for l, link in enumerate(reply["links"], start=1):
        assert np.array(link["grad"]) == pytest.approx(grads[f"layers.{l - 1}.weight"], rel=1e-5, abs=1e-7)


def test_side_by_side_with_three_classes_sends_both_class_maps(client):
    with client.websocket_connect("/ws") as ws:
        opened(ws)
        ws.send_json({"type": "config", "config": {"dataset": "gaussians", "classes": 3, "loss": "softmax_ce",
                                                   "compare_init": "zeros"}})
        ws.receive_json(), ws.receive_json()
        header, arrays = decode_all(ws.receive_bytes())
    assert header["arrays"] == ["boundary", "confidence", "maps", "twin_boundary", "twin_confidence"]
    # zeros: every score is 0, so each class is as likely as the others (1/3) and argmax takes class 0
    assert np.allclose(arrays["twin_confidence"], 1 / 3) and not arrays["twin_boundary"].any()
    assert header["twin"]["train_error"] == pytest.approx(2 / 3, abs=0.05)
