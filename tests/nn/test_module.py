"""Module and Parameter: attribute walking, names, caching, state dicts, repr, functional_call."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import Linear, Module, Parameter, Sequential, functional_call


class Block(Module):
    def __init__(self):
        self.scale = Parameter([2.0])
        self.inner = Linear(2, 2, rng=0)
        self.extras = [Parameter([1.0]), {"b": Parameter([3.0]), "a": Parameter([4.0])}]
        self.note = "not a parameter"
        self.numbers = [1, 2, 3]

    def forward(self, x):
        return self.inner(x) * self.scale


def test_parameter_is_a_float_leaf_that_requires_grad():
    p = Parameter([1, 2])
    assert isinstance(p, cr.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float64
    assert Parameter(np.ones(2, np.float32)).dtype == np.float32
    with pytest.raises(cr.DTypeError, match="floating point"):
        Parameter([1, 2], dtype=np.int64)
    assert "Parameter(" in repr(p)


def test_named_parameters_walk_attributes_in_order_with_dotted_names():
    names = [n for n, _ in Block().named_parameters()]
    assert names == ["scale", "inner.weight", "inner.bias", "extras.0", "extras.1.b", "extras.1.a"]


def test_shared_parameters_are_listed_once():
    lin = Linear(2, 2, rng=0)
    seq = Sequential(lin, cr.nn.Tanh(), lin)
    assert [n for n, _ in seq.named_parameters()] == ["layers.0.weight", "layers.0.bias"]
    assert len(seq.parameters()) == 2


def test_parameter_cache_follows_structural_changes():
    seq = Sequential(Linear(2, 3, rng=0))
    assert len(seq.parameters()) == 2
    seq.append(Linear(3, 1, rng=0))
    assert len(seq.parameters()) == 4
    seq.layers.pop()
    assert len(seq.parameters()) == 2
    seq.layers[0] = Linear(2, 3, bias=False, rng=0)
    assert [n for n, _ in seq.named_parameters()] == ["layers.0.weight"]
    blk = Block()
    blk.extras[1]["c"] = Parameter([5.0])
    assert [n for n, _ in blk.named_parameters()][-1] == "extras.1.c"
    blk.inner = Linear(2, 2, bias=False, rng=0)
    assert "inner.bias" not in dict(blk.named_parameters())
    # the list returned is a copy: changing it leaves the model alone
    ps = blk.parameters()
    ps.clear()
    assert len(blk.parameters()) == 6


def test_user_list_built_with_append_in_init():
    class Stack(Module):
        def __init__(self):
            self.blocks = []
            for _ in range(3):
                self.blocks.append(Linear(2, 2, rng=0))

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    s = Stack()
    assert len(s.parameters()) == 6
    assert s(np.ones((1, 2))).shape == (1, 2)


def test_zero_grad_train_eval_and_num_parameters():
    blk = Block()
    out = blk(np.ones((3, 2))).sum()
    out.backward()
    assert blk.inner.weight.grad is not None
    blk.zero_grad()
    assert all(p.grad is None for p in blk.parameters())
    assert blk.eval() is blk and not blk.training and not blk.inner.training
    assert blk.train().training and blk.inner.training
    assert blk.num_parameters() == 1 + 4 + 2 + 3


def test_state_dict_round_trip_and_copies():
    a, b = cr.nn.MLP(3, [4], 2, rng=0), cr.nn.MLP(3, [4], 2, rng=1)
    state = a.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["layers.0.bias"][:] = 7.0  # a copy: the model is untouched
    assert not np.any(a.layers[0].bias.numpy() == 7.0)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_names_every_problem():
    m = cr.nn.MLP(3, [4], 2, rng=0)
    state = m.state_dict()
    del state["layers.1.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(cr.ShapeError, match=r"missing layers\.1\.bias; unexpected extra"):
        m.load_state_dict(state)
    state = m.state_dict()
    state["layers.0.weight"] = np.zeros((3, 4))
    with pytest.raises(cr.ShapeError, match=r"layers\.0\.weight: shape \(3, 4\) in the state, \(4, 3\) in the model"):
        m.load_state_dict(state)
    state = m.state_dict()
    state["layers.0.bias"] = state["layers.0.bias"].astype(np.float32)
    with pytest.raises(cr.ShapeError, match="dtype float32 in the state, float64 in the model"):
        m.load_state_dict(state)
    partial = {"layers.0.bias": np.ones(4)}
    m.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(m.layers[0].bias.numpy(), np.ones(4))


def test_load_state_dict_makes_old_graphs_refuse_backward():
    m = cr.nn.Linear(2, 1, rng=0)
    out = m(np.ones((1, 2))).sum()
    m.load_state_dict(m.state_dict())
    with pytest.raises(cr.GraphError, match="changed in place"):
        out.backward()


def test_repr_is_readable():
    text = repr(cr.nn.MLP(4, [8], 3, activation="tanh", rng=0))
    assert text.splitlines() == [
        "MLP(4 -> [8] -> 3, activation='tanh', init='xavier_uniform'",
        "  (layers.0): Linear(in_features=4, out_features=8)",
        "  (activations.0): Tanh()",
        "  (layers.1): Linear(in_features=8, out_features=3)",
        ")",
    ]
    assert repr(Block()).startswith("Block(\n  (inner): Linear(in_features=2, out_features=2)")


def test_functional_call_replaces_and_restores():
    lin = Linear(2, 1, rng=0)
    w_before = lin.weight
    out = functional_call(lin, {"weight": np.array([[1.0, 2.0]]), "bias": np.array([0.5])}, np.array([[3.0, 4.0]]))
    assert out.item() == 11.5
    assert lin.weight is w_before
    with pytest.raises(KeyError, match="no parameter"):
        functional_call(lin, {"nope": 1.0}, np.ones((1, 2)))


def test_functional_call_gives_the_functional_api_model_gradients():
    model = cr.nn.MLP(3, [4], 1, activation="tanh", rng=0)
    x = np.random.default_rng(1).normal(size=(5, 3))
    names = [n for n, _ in model.named_parameters()]

    def loss(*ps):
        return cr.mean(functional_call(model, dict(zip(names, ps)), x) ** 2)

    grads = cr.grad(loss, argnums=tuple(range(len(names))))(*[p.numpy() for p in model.parameters()])
    cr.mean(model(x) ** 2).backward()
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(np.asarray(g), p.grad.numpy(), rtol=1e-12)


def test_module_without_forward_or_config_says_so():
    class Empty(Module):
        pass

    with pytest.raises(NotImplementedError, match="forward"):
        Empty()(1)
    with pytest.raises(NotImplementedError, match="config"):
        Empty().config()


def test_deepcopy_gives_an_independent_model():
    import copy

    m = cr.nn.MLP(3, [4], 2, rng=0)
    m.parameters()  # fill the cache first: the copy must not share it
    c = copy.deepcopy(m)
    assert all(p is not q for p, q in zip(m.parameters(), c.parameters()))
    c.layers[0].weight.data[...] = 0
    assert m.layers[0].weight.numpy().any()
    c.layers.append(Linear(2, 2, rng=0))
    assert len(c.parameters()) == 6 and len(m.parameters()) == 4
