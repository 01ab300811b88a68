"""cr.trace / cr.name / cr.viz.group: the Graph, its adjoints and tangents against the modes."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.core.errors import GraphError, ShapeError
from chainrule.modes.reverse import grads_of


def quiz(x, z):
    return cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)


def quiz_shared(x, z):
    xz = cr.name(x * z, "xz")
    lx = cr.log(x)
    return cr.exp(xz) + xz / lx + cr.sin(lx) / xz


def reverse_grads(f, *args):
    leaves = [cr.tensor(a, requires_grad=True, dtype=float) for a in args]
    out = f(*leaves)
    seed = np.ones_like(out.numpy())
    return [g.numpy() if isinstance(g, cr.Tensor) else np.asarray(g) for g in grads_of(out, seed, leaves)]


def test_quiz_shared_node_accumulates_three_terms():
    g = cr.trace(quiz_shared, 2.0, 3.0)
    xz = g["xz"]
    assert xz.value == 6.0 and xz.op == "multiply"
    assert [a.name for a in xz.args] == ["x", "z"]
    terms = g.terms("xz")
    assert len(terms) == 3
    assert sorted(c.op for c, _, _ in terms) == ["divide", "divide", "exp"]
    # Each term is g_c * dc/d(xz); they sum to the adjoint, which reverse mode confirms.
    assert np.isclose(sum(float(t) for _, _, t in terms), float(g.adjoint("xz")))
    e6 = np.exp(6.0)
    lx = np.log(2.0)
    expected = e6 + 1 / lx - np.sin(lx) / 36.0  # d/d(xz) of e^u + u/ln x + sin(ln x)/u at u = 6
    assert np.isclose(float(g.adjoint("xz")), expected, rtol=1e-13)
    gx, gz = reverse_grads(quiz, 2.0, 3.0)
    assert np.isclose(float(g.adjoint("x")), gx, rtol=1e-13)
    assert np.isclose(float(g.adjoint("z")), gz, rtol=1e-13)


def test_names_inputs_and_generated_names_are_stable():
    g1 = cr.trace(quiz, 2.0, 3.0)
    g2 = cr.trace(quiz, 2.0, 3.0)
    names = [n.name for n in g1.nodes]
    assert names == [n.name for n in g2.nodes]
    assert names[:2] == ["x", "z"]
    assert names[2:] == [f"v{i}" for i in range(1, len(names) - 1)]
    assert g1.output is g1.nodes[-1]
    assert [n.name for n in g1.inputs] == ["x", "z"]


def test_given_names_are_kept_and_collisions_are_avoided():
    def f(v1, x):
        a = cr.name(v1 * x, "a")
        b = cr.name(a + 1.0, "a")  # the same name twice
        return cr.exp(b) * v1

    g = cr.trace(f, 1.0, 2.0)
    names = [n.name for n in g.nodes if n.kind != "constant"]
    assert len(names) == len(set(names))
    assert "a" in names and "a_2" in names
    assert g["a_2"].args[0] is g["a"]
    generated = [n.name for n in g.ops if n.name not in ("a", "a_2")]
    assert generated == ["v2", "v3"]  # v1 is the input's name, so numbering skips it


def test_name_on_plain_values_is_a_no_op_and_checks_the_label():
    a = np.arange(3.0)
    assert cr.name(a, "a") is a
    with pytest.raises(TypeError):
        cr.name(a, "")


def test_constants_parameters_and_kinds():
    w = cr.tensor([1.0, -2.0], requires_grad=True, name="w")
    data = cr.tensor([3.0, 4.0])  # no gradient: a constant tensor

    def f(x):
        return cr.sum(w * x * 2.0 + data)

    g = cr.trace(f, np.array([0.5, 1.5]))
    kinds = {n.name: n.kind for n in g.nodes}
    assert kinds["x"] == "input" and kinds["w"] == "parameter" and kinds["2"] == "constant"
    assert [n.kind for n in g.nodes if n.kind == "constant" and np.size(n.value) > 1] == ["constant"]
    assert np.allclose(g.adjoint("w"), [1.0, 3.0])  # 2 x
    assert np.allclose(g.adjoint("x"), [2.0, -4.0])  # 2 w
    assert w.grad is None  # tracing never touches .grad


def test_integer_data_is_not_differentiated():
    labels = np.array([1, 0])

    def f(z, labels):
        return cr.sum(cr.log_softmax(z)[np.arange(2), labels])

    g = cr.trace(f, np.array([[1.0, 2.0], [0.5, -1.0]]), labels)
    assert not g["labels"].differentiable
    backward = g.backward()
    assert set(backward) == {"z", "labels"}
    soft = np.exp(g["z"].value) / np.exp(g["z"].value).sum(1, keepdims=True)
    expected = np.eye(2)[labels] - soft
    assert np.allclose(g.adjoint("z"), expected)


OPS = [
    ("exp/sin/tanh", lambda x, y: cr.sum(cr.exp(x) * cr.sin(y) + cr.tanh(x * y))),
    ("broadcast", lambda x, y: cr.sum(cr.sigmoid(x[:, None] * y[None, :] - 0.5))),
    ("matmul", lambda x, y: cr.sum(cr.softplus(cr.matmul(cr.reshape(x, (3, 1)), cr.reshape(y, (1, 3)))))),
    ("reductions", lambda x, y: cr.logsumexp(x * y) + cr.max(x) - cr.mean(cr.sqrt(y * y + 1.0))),
    ("softmax", lambda x, y: cr.sum(cr.softmax(x + y) * cr.log_softmax(x - y))),
    ("shapes", lambda x, y: cr.sum(cr.concatenate([x, y]) ** 2) + cr.sum(cr.stack([x, y], axis=1)[:, 0] * y)),
    ("where/maximum", lambda x, y: cr.sum(cr.where(x > 0, x * y, -y) + cr.maximum(x, y) + cr.abs(x - y))),
    ("power/divide", lambda x, y: cr.sum((x * x + 1.0) ** 1.5 / (y * y + 2.0))),
]


@pytest.mark.parametrize("label,f", OPS, ids=[o[0] for o in OPS])
def test_adjoints_equal_reverse_mode_and_tangents_equal_directional_derivatives(label, f):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    g = cr.trace(f, x, y)
    assert np.isclose(float(g.value), float(f(x, y)))
    gx, gy = reverse_grads(f, x, y)
    assert np.allclose(g.adjoint("x"), gx, rtol=1e-12, atol=1e-14)
    assert np.allclose(g.adjoint("y"), gy, rtol=1e-12, atol=1e-14)
    # The adjoint of every intermediate node is the sum of its terms.
    for n in g.ops:
        if g.terms(n.name):
            total = sum(np.asarray(t) for _, _, t in g.terms(n.name))
            assert np.allclose(total, g.adjoint(n.name))
    vx, vy = rng.standard_normal(3), rng.standard_normal(3)
    t = g.tangent(g.output.name, {"x": vx, "y": vy})
    assert np.isclose(float(t), gx @ vx + gy @ vy, rtol=1e-10)
    # and against central differences, independently of both modes
    h = 1e-6
    fd = (float(f(x + h * vx, y + h * vy)) - float(f(x - h * vx, y - h * vy))) / (2 * h)
    assert np.isclose(float(t), fd, rtol=1e-5, atol=1e-7)


def test_tangents_against_forward_mode_when_available():
    try:
        jvp = cr.jvp
    except (AttributeError, ImportError):
        pytest.skip("forward mode (cr.jvp) is not available yet")
    g = cr.trace(quiz, 2.0, 3.0)
    _, t = jvp(quiz, (2.0, 3.0), (1.0, 0.0))
    assert np.isclose(float(g.tangent(g.output.name, "x")), float(np.asarray(t)), rtol=1e-12)


def test_vector_output_needs_a_seed():
    g = cr.trace(lambda x: cr.exp(x), np.array([1.0, 2.0]))
    with pytest.raises(GraphError, match="seed"):
        g.backward()
    g.backward(seed=np.array([1.0, 0.5]))
    assert np.allclose(g.adjoint("x"), np.exp([1.0, 2.0]) * [1.0, 0.5])
    with pytest.raises(ShapeError):
        g.backward(seed=np.ones(3))


def test_direction_errors():
    g = cr.trace(lambda x, y: cr.sum(x * y), np.ones(2), 1.0)
    with pytest.raises(ShapeError, match="direction"):
        g.tangents("x")
    with pytest.raises(ShapeError):
        g.tangents({"x": np.ones(3)})
    with pytest.raises(KeyError, match="no quantity named 'q'"):
        g.tangents({"q": 1.0})
    assert float(g.tangent(g.output.name, "y")) == 2.0


def test_groups_mark_the_operations_of_a_block():
    def f(x):
        with cr.viz.group("layer 1"):
            h = cr.tanh(x * 2.0)
            with cr.viz.group("inner"):
                h = h + 1.0
        return cr.sum(h * h)

    g = cr.trace(f, np.array([0.1, 0.2]))
    groups = {n.name: n.group for n in g.ops}
    assert groups == {"v1": "layer 1", "v2": "layer 1", "v3": "inner", "v4": None, "v5": None}


def test_traces_in_two_threads_keep_their_groups_apart():
    # thread A opens a group and waits inside it while this thread takes a whole trace with groups
    import threading

    inside, done, graphs = threading.Event(), threading.Event(), {}

    def f_a(x):
        with cr.viz.group("A"):
            h = cr.tanh(x)
            inside.set()
            done.wait(10)
            h = h * 2.0
        return cr.sum(h)

    def f_b(x):
        with cr.viz.group("B"):
            h = cr.exp(x)
        return cr.sum(h)

    thread = threading.Thread(target=lambda: graphs.setdefault("A", cr.trace(f_a, np.array([0.1, 0.2]))))
    thread.start()
    assert inside.wait(10)
    graphs["B"] = cr.trace(f_b, np.array([0.3]))
    done.set()
    thread.join(10)
    assert [n.group for n in graphs["A"].ops] == ["A", "A", None]
    assert [n.group for n in graphs["B"].ops] == ["B", None]


def test_outputs_that_are_tuples_or_released_graphs_are_refused():
    with pytest.raises(TypeError, match="one output"):
        cr.trace(lambda x: (x, x), 1.0)

    def released(x):
        y = x * x
        y.backward()
        return y

    with pytest.raises(GraphError, match="released"):
        cr.trace(released, 1.0)


def test_output_that_is_an_input_or_a_constant():
    g = cr.trace(lambda x: x, 3.0)
    assert g.output.kind == "input" and float(g.adjoint("x")) == 1.0
    g = cr.trace(lambda x: np.float64(2.0), 3.0)
    assert g.output.kind == "constant"


def test_subgraph_keeps_selected_nodes_and_their_inputs():
    g = cr.trace(quiz_shared, 2.0, 3.0)
    assert [n.op for n in g.ops[:4]] == ["multiply", "log", "exp", "divide"]
    sub = g.subgraph(["v2", "v3"])  # exp(xz) and xz / log(x)
    assert {n.name for n in sub.nodes} == {"xz", "v1", "v2", "v3"}
    assert sub["xz"].kind == "input" and sub["v1"].kind == "input"  # cut off: inputs of the kept nodes
    assert [a.name for a in sub["v3"].args] == ["xz", "v1"]
    assert np.isclose(float(sub.adjoint("v3")), float(g.adjoint("v3")))


def test_deep_chain_does_not_recurse():
    def f(x):
        for _ in range(2000):
            x = cr.sin(x) * 0.5 + x
        return x

    g = cr.trace(f, 0.3)
    assert len(g.ops) == 6000
    (gx,) = reverse_grads(f, 0.3)
    assert np.isclose(float(g.adjoint("x")), gx)


def test_parameters_named_by_a_mapping_without_renaming_the_tensors():
    model = cr.nn.MLP(3, [2], 2, activation="tanh", rng=0)
    g = cr.trace(lambda x: cr.sum(model(x)), np.ones((1, 3)), params=model.named_parameters())
    assert [n.name for n in g.nodes if n.kind == "parameter"] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert all(p.name is None for p in model.parameters())
    out = cr.sum(model(np.ones((1, 3))))
    out.backward()
    for name, p in model.named_parameters():
        assert np.allclose(g.adjoint(name), p.grad.numpy())
