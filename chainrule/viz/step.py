"""One training step of a network on one example, traced in the layout of course handouts."""
from __future__ import annotations

import numpy as np

from chainrule.core import ops
from chainrule.core.errors import ChainruleError, ShapeError
from chainrule.core.tensor import Tensor, no_grad
from chainrule.viz.tables import Table, _style, fmt_value, join_tables
from chainrule.viz.trace import PARAM, group, name, trace

__all__ = ["explain_step", "Step"]


def _lines(s, v, precision, max_cols=12, max_rows=20):
    """A value as cell lines in style ``s``: one line per matrix row when it fits, else one line."""
    a = np.asarray(v)
    if a.ndim == 2 and 1 < a.shape[0] <= max_rows and a.shape[1] <= max_cols:
        return [s.value(row, precision) for row in a]
    return [s.value(a, precision)]


def _stages(model):
    """The model as a list of ("linear", Linear) and ("activation", module) steps."""
    from chainrule.nn.layers import Linear

    if hasattr(model, "layers") and hasattr(model, "activations"):  # MLP and the one-layer models
        stages = []
        for i, layer in enumerate(model.layers):
            stages.append(("linear", layer))
            if i < len(model.activations):
                stages.append(("activation", model.activations[i]))
    elif hasattr(model, "layers"):  # Sequential
        stages = [("linear" if isinstance(m, Linear) else "activation", m) for m in model.layers]
    else:
        raise TypeError(f"explain_step: expected an MLP or a Sequential of Linear layers and activations, "
                        f"got {type(model).__name__}")
    if not stages or stages[-1][0] != "linear":
        raise TypeError("explain_step: the model must end with a Linear layer that gives the class scores")
    for kind, m in stages:
        if kind == "linear" and not isinstance(m, Linear):
            raise TypeError(f"explain_step: {type(m).__name__} is not a Linear layer")
    return stages


class Step:
    """A traced training step: forward quantities, their and the parameters' gradients, and the
    updated parameters. ``str(step)`` prints the three tables; ``render(format)`` gives text,
    markdown, latex or html; ``graph`` is the full trace (tables and drawing)."""

    def __init__(self, graph, x, y, lr, forward_names, grad_names, params, prediction, loss,
                 prediction_rule="argmax of y_hat"):
        self.graph = graph
        self.prediction_rule = prediction_rule  # how the prediction is read from y_hat
        self.x, self.y, self.lr = x, y, lr
        self.forward_names = forward_names  # [(name, description)]
        self.grad_names = grad_names  # [(name, description)] in the handout's backward order
        self.params = params  # [(short name, model name, old value, gradient, new value)]
        self.prediction = prediction
        self.loss = loss

    @property
    def grads(self) -> dict:
        """d(loss)/d(parameter) by model parameter name."""
        return {model_name: g for _, model_name, _, g, _ in self.params}

    @property
    def new_params(self) -> dict:
        return {model_name: new for _, model_name, _, _, new in self.params}

    def value(self, label):
        """The forward value of a quantity (a1, z1, s, y_hat, J, ...)."""
        return self.graph[label].value

    def grad(self, label):
        """d(loss)/d(quantity or parameter)."""
        return self.graph.adjoint(label)

    def tables(self, precision=6):
        graph, loss_name = self.graph, "J"

        def forward(s):
            rows = [[s.ident("x"), s.words("input (the example)"), _lines(s, self.x, precision)],
                    [s.ident("y"), s.words("label"), s.value(self.y)]]
            for label, what in self.forward_names:
                rows.append([s.ident(label), s.words(what), _lines(s, graph[label].value, precision)])
            rows.append([s.words("prediction"), s.words(self.prediction_rule), s.value(self.prediction)])
            return ["quantity", "meaning", "value"], rows

        def backward(s):
            rows = [[s.partial(loss_name, label), s.words(what), _lines(s, graph.adjoint(label), precision)]
                    for label, what in self.grad_names]
            return ["gradient", "of", "value"], rows

        def update(s):
            rows = []
            for short, model_name, old, g, new in self.params:
                rows.append([s.ident(short) + s.words(" new"), s.words(f"{model_name} - lr * dJ/d{short}"),
                             _lines(s, new, precision)])
            return ["parameter", "update", "value"], rows

        return [Table("Forward pass", forward),
                Table("Backward pass", backward, "d(loss)/d(quantity), by the chain rule from J back to the input"),
                Table(f"SGD update (lr = {fmt_value(self.lr)})", update)]

    def render(self, format="text", precision=6) -> str:
        """The three tables in ``format``: text, markdown, latex or html (a complete page)."""
        _style(format)
        text = join_tables(self.tables(precision), format)
        if format == "html":
            from chainrule.viz.page import html_page

            text = html_page(f"Training step: loss {fmt_value(self.loss)}", text)
        return text

    def draw(self, path, format=None, **options):
        """Write the step's computation graph to ``path`` (.svg, .png or .dot), one row per layer."""
        return self.graph.draw(path, format=format, rows=True, **options)

    def __str__(self):
        return self.render("text")

    def __repr__(self):
        return f"<Step: loss {fmt_value(self.loss)}, prediction {self.prediction}, label {self.y}>"

    def _repr_html_(self):
        return join_tables(self.tables(), "html")


def explain_step(model, x, y, lr=0.1, update=True, loss="cross_entropy") -> Step:
    r"""Trace one SGD step of a network on one example ``x`` with target ``y``: per layer the
    pre-activation $a_l = W_l h_{l-1} + b_l$ and activation $z_l = \phi(a_l)$, the output scores
    $s$, the prediction $\hat y$ and the loss $J$; then $\partial J / \partial$ (each of these and
    each parameter) by reverse mode; then the updated parameters
    $W \leftarrow W - \mathrm{lr}\, \partial J/\partial W$, written into ``model`` unless
    ``update=False``. The loss (as ``cr.fit``'s of the same name computes it on one example):

    - ``"cross_entropy"``: $\hat y = \mathrm{softmax}(s)$, $J = -\log \hat y_y$ (y a class label);
    - ``"bce_logits"``: one score, $\hat y = \sigma(s)$,
      $J = -[y \log \hat y + (1 - y) \log(1 - \hat y)]$ (y 0 or 1);
    - ``"mse"``: $\hat y = s$, $J = \frac1K \sum_k (\hat y_k - y_k)^2$ (y a number per output).

    >>> import numpy as np, chainrule as cr
    >>> net = cr.nn.MLP(5, [4], 10, activation="sigmoid", init="zeros")
    >>> step = cr.viz.explain_step(net, np.array([0, 1, 1, 1, 0.]), 7, lr=0.1)
    >>> round(step.loss, 6), float(step.grad("s")[7])   # log 10; y_hat - onehot(y)
    (2.302585, -0.9)
    """
    stages = _stages(model)
    x = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ShapeError(f"explain_step: x must be one example (a vector of features), got shape {x.shape}")
    first = stages[0][1]
    if x.shape[0] != first.in_features:
        raise ShapeError(f"explain_step: the model expects {first.in_features} features, x has {x.shape[0]}")
    x = x.astype(first.dtype)
    k = stages[-1][1].out_features
    if isinstance(y, Tensor):
        y = y.numpy()
    y = _check_target(y, k, loss)

    # Fresh leaves with short names: W1, b1 for layer 1, ... (the model's names are kept alongside).
    n_linear = sum(1 for kind, _ in stages if kind == "linear")
    hidden = n_linear - 1
    leaves, params, groups = [], [], {}
    layer = 0
    for kind, m in stages:
        if kind != "linear":
            continue
        layer += 1
        w = Tensor(m.weight.data, requires_grad=True, name=f"W{layer}")
        b = Tensor(m.bias.data, requires_grad=True, name=f"b{layer}") if m.bias is not None else None
        leaves.append((w, b))
        label = f"layer {layer}" if layer <= hidden else "output layer"
        for t, p in ((w, m.weight), (b, m.bias)):
            if t is not None:
                params.append((t, p))
                groups[t.name] = label
    model_names = {id(p): n for n, p in model.named_parameters()}

    forward_names = []

    def one_hidden(label, l):
        return label if hidden != 1 else label.rstrip("0123456789")

    def step_fn(x):
        h, layer = x, 0
        for kind, m in stages:
            if kind == "linear":
                w, b = leaves[layer]
                layer += 1
                out_layer = layer > hidden
                with group(f"layer {layer}" if not out_layer else "output layer"):
                    a = ops.matmul(w, h)
                    if b is not None:
                        a = a + b
                if out_layer:
                    h = name(a, "s")
                else:
                    h = name(a, one_hidden(f"a{layer}", layer))
                    forward_names.append((h.name, f"pre-activation of layer {layer}"))
            else:
                with group(f"layer {layer}"):
                    z = m(h)
                    if z is not h:  # an identity activation adds no quantity
                        h = name(z, one_hidden(f"z{layer}", layer))
                        forward_names.append((h.name, f"activation of layer {layer}"))
        with group("output layer"):
            if loss == "cross_entropy":
                y_hat = name(ops.softmax(h), "y_hat")
            elif loss == "bce_logits":
                y_hat = name(ops.sigmoid(h), "y_hat")
            else:
                y_hat = h  # the scores are the prediction
        with group("loss"):
            if loss == "cross_entropy":
                return name(-ops.log(y_hat[y]), "J")
            if loss == "bce_logits":
                return name(-(y * ops.log(y_hat[0]) + (1 - y) * ops.log(1 - y_hat[0])), "J")
            d = y_hat - y
            return name(ops.sum(d * d) / k, "J")

    graph = trace(step_fn, x)
    for n in graph.nodes:
        if n.kind == PARAM:
            n.group = groups.get(n.name)
    forward_names += {"cross_entropy": [("s", "output scores"), ("y_hat", "prediction: softmax(s)"),
                                         ("J", "loss: -log y_hat[y]")],
                      "bce_logits": [("s", "output score"), ("y_hat", "prediction: sigmoid(s)"),
                                     ("J", "loss: -[y log y_hat + (1 - y) log(1 - y_hat)]")],
                      "mse": [("s", "output (the prediction)"), ("J", "loss: mean of (s - y)^2")]}[loss]

    # The trace must be the model's own computation.
    with no_grad():
        scores = model(x[None, :])
    scores = np.asarray(scores.numpy() if isinstance(scores, Tensor) else scores)[0]
    if not np.allclose(scores, graph["s"].value, rtol=1e-9, atol=1e-12):
        raise ChainruleError("explain_step: tracing the layers one by one does not reproduce model(x); "
                             "explain_step supports MLPs and Sequentials of Linear layers and elementwise activations")

    graph.backward()
    grad_names = ([("y_hat", "prediction")] if "y_hat" in graph else []) + [("s", "output scores")]
    for layer in range(n_linear, 0, -1):
        grad_names.append((f"W{layer}", f"weight of {'the output layer' if layer == n_linear else f'layer {layer}'}"))
        if f"b{layer}" in graph:
            grad_names.append((f"b{layer}", f"bias of {'the output layer' if layer == n_linear else f'layer {layer}'}"))
        if layer > 1:
            below = layer - 1
            for label, what in reversed(forward_names):
                if label in (one_hidden(f"z{below}", below), one_hidden(f"a{below}", below)):
                    grad_names.append((label, f"{what}"))
    rows = []
    for t, p in params:
        g = np.asarray(graph.adjoint(t.name))
        rows.append((t.name, model_names.get(id(p), t.name), np.array(p.data), g, p.data - lr * g))
    if update:
        with no_grad():
            for (t, p), row in zip(params, rows):
                p.copy_(row[4])
    if loss == "cross_entropy":
        prediction, rule = int(np.argmax(graph["y_hat"].value)), "argmax of y_hat"
    elif loss == "bce_logits":
        prediction, rule = int(graph["y_hat"].value[0] > 0.5), "1 where y_hat > 0.5"
    else:
        prediction, rule = graph["s"].value, "s"
    return Step(graph, x, y, lr, forward_names, grad_names, rows, prediction, float(graph["J"].value), rule)


LOSSES = ("cross_entropy", "bce_logits", "mse")


def _check_target(y, k, loss):
    """The target of one example for ``loss`` with ``k`` outputs, or a ValueError naming it."""
    if loss not in LOSSES:
        raise ValueError(f"explain_step: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "mse":
        t = np.asarray(y, dtype=np.float64)
        if t.size != k:
            raise ShapeError(f"explain_step: the model has {k} output(s) but the target has {t.size} value(s)")
        if not np.all(np.isfinite(t)):
            raise ValueError(f"explain_step: the target must be finite, got {y!r}")
        return float(t.reshape(())) if k == 1 else t.reshape(k)
    if np.ndim(y) != 0 or float(y) != int(y):
        raise ValueError(f"explain_step: y must be one class label (an integer), got {y!r}")
    y = int(y)
    if loss == "bce_logits":
        if k != 1:
            raise ValueError(f"explain_step: bce_logits scores one class against the other with one output; "
                             f"this model has {k}")
        if y not in (0, 1):
            raise ValueError(f"explain_step: bce_logits takes labels 0 or 1, got {y}")
        return y
    if k < 2:
        raise ValueError("explain_step: cross_entropy needs a score per class; this model has "
                         f"{k} output (loss='bce_logits' or 'mse' for one)")
    if not 0 <= y < k:
        raise ValueError(f"explain_step: label {y} is out of range for {k} classes (0..{k - 1})")
    return y
