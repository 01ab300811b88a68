"""Linear algebra: every primitive's reverse and forward rules against float64 central
differences to second order, batched, on the read triangle, near-singular and repeated-eigenvalue
limits, numpy's values, Hessians by forward over reverse, and cross-checks with HIPS autograd and
PyTorch where they are installed."""
import numpy as np
import pytest

import chainrule as cr
import chainrule.numpy.linalg as la
from chainrule.testing import check_grads

rng = np.random.default_rng(7)


def well(*shape):
    """Random well-conditioned square matrices (diagonally dominated)."""
    n = shape[-1]
    return rng.standard_normal(shape) + 2 * n ** 0.5 * np.eye(n)


def spd(*shape):
    a = rng.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def sym(a):
    return (a + np.swapaxes(a, -1, -2)) / 2


def gauge_free(u, vh=None):
    """A function of eigen/singular vectors that does not depend on their signs."""
    out = cr.sum(u * u * np.linspace(0.5, 1.5, u.shape[-1]))
    return out if vh is None else out + cr.sum(vh * vh * np.linspace(-1.0, 1.0, vh.shape[-1]))


CASES = {
    "solve vector": (np.linalg.solve, (well(4, 4), rng.standard_normal(4))),
    "solve matrix": (np.linalg.solve, (well(4, 4), rng.standard_normal((4, 3)))),
    "solve batched": (np.linalg.solve, (well(2, 3, 3), rng.standard_normal((2, 3, 2)))),
    "solve batched vector": (np.linalg.solve, (well(2, 3, 3), rng.standard_normal(3))),
    "solve broadcast": (np.linalg.solve, (well(3, 3), rng.standard_normal((2, 3, 2)))),
    "inv": (np.linalg.inv, (well(4, 4),)),
    "inv batched": (np.linalg.inv, (well(2, 3, 3),)),
    "det": (np.linalg.det, (well(3, 3),)),
    "det batched": (np.linalg.det, (well(2, 3, 3),)),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], (well(4, 4),)),
    "slogdet negative det": (lambda a: np.linalg.slogdet(a)[1], (-well(3, 3),)),
    "slogdet batched": (lambda a: np.linalg.slogdet(a).logabsdet, (well(2, 3, 3),)),
    "cholesky symmetrized": (lambda a: np.linalg.cholesky(sym(a)), (spd(4, 4),)),
    "cholesky reads the lower triangle": (np.linalg.cholesky, (spd(3, 3) + np.triu(np.ones((3, 3)), 1),)),
    "cholesky upper": (lambda a: np.linalg.cholesky(a, upper=True), (spd(3, 3) + np.tril(np.ones((3, 3)), -1),)),
    "cholesky batched": (lambda a: np.linalg.cholesky(sym(a)), (spd(2, 3, 3),)),
    "eigh values": (lambda a: np.linalg.eigh(sym(a))[0], (rng.standard_normal((4, 4)),)),
    "eigh vectors": (lambda a: gauge_free(np.linalg.eigh(sym(a))[1]), (rng.standard_normal((4, 4)),)),
    "eigh upper triangle": (lambda a: gauge_free(np.linalg.eigh(a, UPLO="U")[1]) + cr.sum(np.linalg.eigvalsh(a, "U")),
                            (rng.standard_normal((3, 3)),)),
    "eigh batched": (lambda a: gauge_free(np.linalg.eigh(a).eigenvectors) * np.linalg.eigh(a).eigenvalues,
                     (rng.standard_normal((2, 3, 3)),)),
    "svd square": (lambda a: gauge_free(*np.linalg.svd(a)[::2]) + cr.sum(np.linalg.svd(a)[1]), (rng.standard_normal((3, 3)),)),
    "svd tall": (lambda a: gauge_free(*np.linalg.svd(a, full_matrices=False)[::2]), (rng.standard_normal((5, 3)),)),
    "svd wide": (lambda a: gauge_free(*np.linalg.svd(a, full_matrices=False)[::2]), (rng.standard_normal((2, 4)),)),
    "svd values batched": (lambda a: np.linalg.svd(a, compute_uv=False), (rng.standard_normal((2, 4, 3)),)),
    "pinv tall": (np.linalg.pinv, (rng.standard_normal((4, 2)),)),
    "pinv wide": (np.linalg.pinv, (rng.standard_normal((2, 4)),)),
    "pinv batched": (np.linalg.pinv, (rng.standard_normal((2, 3, 3)),)),
    "solve and slogdet together": (lambda a, b: cr.sum(np.linalg.solve(a, b) * b) + np.linalg.slogdet(a)[1],
                                   (spd(3, 3), rng.standard_normal(3))),
}


@pytest.mark.parametrize("name", CASES)
def test_rules_match_central_differences_to_second_order(name):
    f, args = CASES[name]
    check_grads(f, *args, order=2)  # reverse and forward, then forward over reverse


NORMS = [(None, None, (5,)), (1, None, (5,)), (2, None, (5,)), (np.inf, None, (5,)), (-np.inf, None, (5,)),
         (3, None, (5,)), (0.5, None, (5,)), (None, None, (3, 4)), ("fro", None, (3, 4)), ("nuc", None, (3, 4)),
         (2, None, (3, 4)), (-2, None, (3, 4)), (1, None, (3, 4)), (-1, None, (3, 4)), (np.inf, None, (3, 4)),
         (-np.inf, None, (3, 4)), (2, -1, (2, 3)), (1, 0, (2, 3)), ("nuc", (2, 0), (3, 2, 4)),
         (np.inf, (0, 2), (3, 2, 4)), (None, None, (2, 3, 4))]


@pytest.mark.parametrize("ord,axis,shape", NORMS, ids=[f"{o}-{a}-{s}" for o, a, s in NORMS])
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_every_order_matches_numpy_and_central_differences(ord, axis, shape, keepdims):
    x = rng.standard_normal(shape)
    f = lambda v: np.linalg.norm(v, ord, axis, keepdims)  # noqa: E731
    got = f(cr.tensor(x, requires_grad=True))
    assert isinstance(got, cr.Tensor) and got.requires_grad
    np.testing.assert_allclose(got.numpy(), f(x), rtol=1e-12)
    assert got.shape == np.shape(f(x))
    check_grads(f, x)


def test_vector_and_matrix_norm():
    x = rng.standard_normal((2, 3, 4))
    for f in (lambda v: np.linalg.vector_norm(v, axis=-1, ord=1), lambda v: np.linalg.vector_norm(v),
              lambda v: np.linalg.matrix_norm(v, ord="nuc"), lambda v: np.linalg.matrix_norm(v, keepdims=True)):
        np.testing.assert_allclose(f(cr.tensor(x)).numpy(), f(x), rtol=1e-12)
        check_grads(f, x)


def test_values_are_numpys_on_plain_arrays_and_tensors():
    a, b = well(3, 3), rng.standard_normal((3, 2))
    s = spd(3, 3)
    pairs = [(la.solve, (a, b)), (la.inv, (a,)), (la.det, (a,)), (la.cholesky, (s,)), (la.pinv, (b,)),
             (la.eigvalsh, (s,)), (la.svdvals, (b,))]
    for f, args in pairs:
        want = getattr(np.linalg, f.__name__.removeprefix("linalg_"))(*args)
        assert type(f(*args)) is type(want)  # numpy's own call on plain arrays
        np.testing.assert_allclose(f(*[cr.tensor(v) for v in args]).numpy(), want, rtol=1e-12)
    sign, logdet = la.slogdet(cr.tensor(-a))
    assert sign == np.linalg.slogdet(-a)[0] and not isinstance(sign, cr.Tensor)
    w, v = la.eigh(cr.tensor(s))
    np.testing.assert_allclose((v * w).numpy() @ v.numpy().T, s, atol=1e-12)
    u, sv, vh = np.linalg.svd(cr.tensor(b), full_matrices=False)
    np.testing.assert_allclose((u * sv).numpy() @ vh.numpy(), b, atol=1e-12)


def test_hessian_through_solve_and_slogdet_by_forward_over_reverse():
    m = spd(3, 3)
    c = rng.standard_normal(3)

    def f(x):
        a = m + cr.matmul(cr.reshape(x, (3, 1)), cr.reshape(x, (1, 3)))
        return np.linalg.slogdet(a)[1] + cr.sum(np.linalg.solve(a, c) * x)

    x = rng.standard_normal(3)
    h = cr.hessian(f)(x)
    g = cr.grad(f)
    eps = 1e-5
    numeric = np.stack([(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(h, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h, h.T, atol=1e-10)


def test_near_singular_matrices_within_their_conditioning():
    # cond(a) ~ 1e5: the rules stay exact, and central differences agree to the loss their step
    # size suffers from the conditioning (the documented limit: rtol grows with cond(a)).
    u, _, vt = np.linalg.svd(rng.standard_normal((3, 3)))
    a = u @ np.diag([1.0, 1e-2, 1e-5]) @ vt
    b = rng.standard_normal(3)
    check_grads(np.linalg.solve, a, b, eps=1e-10, rtol=1e-3, atol=1e-3)
    check_grads(lambda m: np.linalg.slogdet(m)[1], a, eps=1e-10, rtol=1e-3, atol=1e-3)


def test_singular_matrix_has_no_derivative_of_det_here():
    # det's rule uses a^-1 (Giles 2008): at a singular matrix it raises numpy's LinAlgError, a
    # documented limit (the adjugate would give the derivative there)
    with pytest.raises(np.linalg.LinAlgError, match="inv: Singular matrix"):
        cr.grad(np.linalg.det)(np.ones((3, 3)))
    with pytest.raises(np.linalg.LinAlgError, match="cholesky: Matrix is not positive definite"):
        np.linalg.cholesky(cr.tensor(-np.eye(2), requires_grad=True))


def test_repeated_eigenvalues_documented_limit():
    # eigenvalue functions stay exact at a repeated eigenvalue; between equal eigenvalues the
    # eigenvectors' derivative is undefined and taken as 0 (no NaN)
    a = np.diag([1.0, 1.0, 3.0])
    np.testing.assert_allclose(cr.grad(lambda m: cr.sum(np.linalg.eigvalsh(m) ** 2))(a), np.diag([2.0, 2.0, 6.0]))
    g = cr.grad(lambda m: gauge_free(np.linalg.eigh(m)[1]))(a)
    assert np.all(np.isfinite(g))
    # the projector onto the repeated eigenvalue's space depends on it smoothly: exact
    check_grads(lambda m: (lambda v: cr.matmul(v[:, :2], v[:, :2].T))(np.linalg.eigh(sym(m))[1]), a + 0.0)


def test_clear_errors():
    with pytest.raises(cr.ShapeError, match="square"):
        np.linalg.inv(cr.tensor(np.ones((2, 3)), requires_grad=True))
    with pytest.raises(ValueError, match="full_matrices=False"):
        np.linalg.svd(cr.tensor(np.ones((2, 3)), requires_grad=True))
    with pytest.raises(ValueError, match="invalid norm order"):
        np.linalg.norm(cr.tensor(np.ones((2, 3)), requires_grad=True), ord=3)


# ---------------------------------------------------------------- peers
PEER_CASES = [
    ("solve", lambda np_, a, b: np_.sum(np_.linalg.solve(a, b) ** 2), (well(3, 3), rng.standard_normal(3))),
    ("inv", lambda np_, a: np_.sum(np_.linalg.inv(a) ** 3), (well(3, 3),)),
    ("det", lambda np_, a: np_.linalg.det(a), (well(3, 3),)),
    ("slogdet", lambda np_, a: np_.linalg.slogdet(a)[1], (well(3, 3),)),
    ("cholesky", lambda np_, a: np_.sum(np_.linalg.cholesky((a + a.T) / 2) ** 3), (spd(3, 3),)),
    ("eigh", lambda np_, a: np_.sum(np_.linalg.eigh((a + a.T) / 2)[0] ** 3), (rng.standard_normal((3, 3)),)),
    ("svd", lambda np_, a: np_.sum(np_.linalg.svd(a, full_matrices=False)[1] ** 3), (rng.standard_normal((4, 3)),)),
    ("pinv", lambda np_, a: np_.sum(np_.linalg.pinv(a) ** 3), (rng.standard_normal((4, 3)),)),
    ("norm nuc", lambda np_, a: np_.linalg.norm(a, "nuc"), (rng.standard_normal((4, 3)),)),
]


@pytest.mark.parametrize("name,f,args", PEER_CASES, ids=[c[0] for c in PEER_CASES])
def test_gradients_match_hips_autograd(name, f, args):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    argnums = tuple(range(len(args)))
    want = [autograd.grad(lambda *v: f(anp, *v), i)(*args) for i in argnums]
    got = cr.grad(lambda *v: f(np, *v), argnums=argnums)(*args)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,f,args", PEER_CASES, ids=[c[0] for c in PEER_CASES])
def test_gradients_match_pytorch(name, f, args):
    torch = pytest.importorskip("torch")

    class TorchNumpy:  # the few names the cases use, on torch
        sum = staticmethod(torch.sum)

        class linalg:
            solve = staticmethod(torch.linalg.solve)
            inv = staticmethod(torch.linalg.inv)
            det = staticmethod(torch.linalg.det)
            slogdet = staticmethod(torch.linalg.slogdet)
            cholesky = staticmethod(torch.linalg.cholesky)
            eigh = staticmethod(torch.linalg.eigh)
            pinv = staticmethod(torch.linalg.pinv)
            norm = staticmethod(lambda a, ord: torch.linalg.matrix_norm(a, ord))

            @staticmethod
            def svd(a, full_matrices=True):
                return torch.linalg.svd(a, full_matrices=full_matrices)

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    f(TorchNumpy, *ts).backward()
    got = cr.grad(lambda *v: f(np, *v), argnums=tuple(range(len(args))))(*args)
    for t, g in zip(ts, got):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-8, atol=1e-10)


JACOBIAN_CASES = {
    "solve batched vector": (np.linalg.solve, (well(2, 3, 3), rng.standard_normal(3))),
    "solve batched matrix": (np.linalg.solve, (well(2, 3, 3), rng.standard_normal((3, 2)))),
    "solve broadcast right-hand side": (np.linalg.solve, (well(3, 3), rng.standard_normal((2, 3, 2)))),
    "solve vector": (np.linalg.solve, (well(3, 3), rng.standard_normal(3))),
    "inv": (np.linalg.inv, (well(2, 3, 3),)),
    "det": (np.linalg.det, (well(2, 3, 3),)),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], (well(3, 3),)),
    "cholesky": (np.linalg.cholesky, (spd(2, 3, 3),)),
    "eigh": (lambda a: np.linalg.eigh(a)[0][..., None] + np.linalg.eigh(a)[1] ** 2, (rng.standard_normal((2, 3, 3)),)),
    "svd": (lambda a: np.linalg.svd(a, full_matrices=False)[0] ** 2, (rng.standard_normal((2, 4, 3)),)),
    "pinv": (np.linalg.pinv, (rng.standard_normal((2, 3, 4)),)),
}


@pytest.mark.parametrize("name", JACOBIAN_CASES)
def test_forward_jacobian_with_a_batch_of_tangents_equals_reverse(name):
    # forward mode pushes all the basis directions through each rule in one call (the rules
    # broadcast over a leading batch axis); reverse mode takes one cotangent at a time
    f, args = JACOBIAN_CASES[name]
    for i in range(len(args)):
        forward = cr.jacobian(f, argnums=i, mode="forward")(*args)
        reverse = cr.jacobian(f, argnums=i, mode="reverse")(*args)
        np.testing.assert_allclose(forward, reverse, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32_in_every_mode():
    a = well(3, 3).astype(np.float32)
    weights = np.arange(3.0, dtype=np.float32)
    for f in (lambda m: np.linalg.slogdet(m)[1], lambda m: cr.sum(np.linalg.eigh(m)[1] ** 2 * weights),
              lambda m: cr.sum(np.linalg.cholesky(m @ m.T)), lambda m: np.linalg.norm(m, "nuc"),
              lambda m: cr.sum(np.linalg.pinv(m)), lambda m: cr.sum(np.linalg.solve(m, m[0]))):
        _, tangent = cr.jvp(f, (a,), (np.ones_like(a),))
        assert np.asarray(f(a)).dtype == cr.grad(f)(a).dtype == np.asarray(tangent).dtype == np.float32


# ---------------------------------------------------------------- compositions: matrix_power, multi_dot, tensor*, lstsq
COMPOSED = {
    "matrix_power 5": (lambda a: np.linalg.matrix_power(a, 5), (well(3, 3) / 3,)),
    "matrix_power -2": (lambda a: np.linalg.matrix_power(a, -2), (well(3, 3),)),
    "matrix_power batched": (lambda a: np.linalg.matrix_power(a, 3), (well(2, 3, 3) / 3,)),
    "multi_dot": (lambda a, b, c: np.linalg.multi_dot([a, b, c]),
                  (rng.standard_normal(3), rng.standard_normal((3, 4)), rng.standard_normal((4, 2)))),
    "tensorinv": (lambda a: np.linalg.tensorinv(a, ind=1), (well(4, 4).reshape(4, 2, 2),)),
    "tensorsolve": (np.linalg.tensorsolve, (well(6, 6).reshape(2, 3, 6), rng.standard_normal((2, 3)))),
    "lstsq x": (lambda a, b: np.linalg.lstsq(a, b)[0], (rng.standard_normal((6, 3)), rng.standard_normal(6))),
    "lstsq residuals": (lambda a, b: np.linalg.lstsq(a, b)[1], (rng.standard_normal((6, 3)), rng.standard_normal((6, 2)))),
    "lstsq singular values": (lambda a, b: np.linalg.lstsq(a, b)[3], (rng.standard_normal((6, 3)), rng.standard_normal(6))),
}


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_compositions_match_numpy_and_central_differences(name):
    f, args = COMPOSED[name]
    plain = f(*args)
    traced = f(*[cr.tensor(a, requires_grad=True) for a in args])
    np.testing.assert_allclose(traced.numpy(), plain, rtol=1e-10, atol=1e-12)
    check_grads(f, *args, order=2)


def test_matrix_power_zero_is_the_identity_and_lstsq_keeps_numpys_extras():
    a = cr.tensor(well(3, 3), requires_grad=True)
    np.testing.assert_array_equal(np.linalg.matrix_power(a, 0), np.eye(3))
    x, res, rank, s = np.linalg.lstsq(a, np.ones(3))
    assert rank == 3 and res.shape == (0,) and s.shape == (3,)
    with pytest.raises(cr.ShapeError, match="must hold"):
        np.linalg.tensorinv(cr.tensor(np.ones((2, 3)), requires_grad=True), ind=1)
