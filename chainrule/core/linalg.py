r"""Linear algebra primitives: solve, inv, det, slogdet, cholesky, eigh, svd, pinv, and norm.

Each is a primitive of the one registry (value, reverse rule, forward rule, display), batched
over leading axes as numpy is, and reachable as ``np.linalg.NAME`` on chainrule values (through
:data:`chainrule.core.ops.NUMPY_FUNCTIONS`) and as ``chainrule.numpy.linalg.NAME``. The rules
follow M. Giles, "Collected matrix derivative results for forward and reverse mode algorithmic
differentiation" (2008), I. Murray, "Differentiation of the Cholesky decomposition" (2016) and
J. Townsend, "Differentiating the singular value decomposition" (2016). They are written with
chainrule's own operations (and these primitives), so they are differentiable again: Hessians
by forward over reverse and grad of grad work.

Conventions.

* ``eigh`` and ``cholesky`` read one triangle of their argument, as numpy's do (the lower one by
  default): their derivatives are the true derivatives of that function, so a perturbation of
  the unread triangle changes nothing (the reverse rule's cotangent is zero there, the lower
  triangle getting the symmetric pair's share). A function that symmetrizes first,
  ``f((a + a.T) / 2)``, gets the usual symmetric gradient.
* Functions with several results (``eigh``, ``svd``, ``slogdet``) are one primitive whose value
  packs the results into one array; the public functions slice it apart (a copy of O(n^2)
  against the O(n^3) decomposition), so every mode sees one node and LAPACK runs once.
* ``norm`` (every order of numpy's) is a composition of primitives (``svd`` for the 2 and
  nuclear norms of matrices).
* On plain arrays every public function is numpy's own call.
* The forward rules broadcast over leading axes, so forward mode pushes a batch of tangents
  (a Jacobian's or Hessian's directions) through each in one call (:data:`BATCHED`).
"""
from __future__ import annotations

import operator

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import ChainruleError, ConcretizationError, ShapeError
from chainrule.core.ops import concrete, has_box, implements, _arr, _norm_axis
from chainrule.core.primitives import (
    add, divide, getitem, matmul, multiply, ndim_of, reshape, shape_of, subtract, swapaxes, unbroadcast,
)
from chainrule.core.registry import defprim


class LinAlgError(ChainruleError, np.linalg.LinAlgError):
    """numpy's LinAlgError (a singular matrix, one not positive definite, ...) raised inside a
    chainrule operation, naming the operation (``except numpy.linalg.LinAlgError`` catches it)."""


def _guarded(name, fn):
    """``fn`` raising :class:`LinAlgError` naming ``name`` where numpy raises its LinAlgError
    (which the dispatcher would otherwise report as a shape error: it is a ValueError)."""
    def impl(*args, **params):
        try:
            return fn(*args, **params)
        except np.linalg.LinAlgError as err:
            if isinstance(err, ChainruleError):
                raise
            raise LinAlgError(f"{name}: {err} (numpy.linalg.LinAlgError)") from None
    impl.__name__ = name
    return impl


# ---------------------------------------------------------------- helpers (batched over leading axes)
def _float(x):
    """The dtype of the constants a rule multiplies ``x`` by: x's own floating dtype, so that
    float32 stays float32 (a float64 identity would promote it)."""
    dtype = np.dtype(P.dtype_of(x))
    return dtype if dtype.kind == "f" else np.float64


def _T(x):
    """The matrix transpose of the last two axes."""
    return swapaxes(x, -1, -2)


def _expand(x, axis):
    s = list(shape_of(x))
    s.insert(axis % (len(s) + 1), 1)
    return reshape(x, shape=tuple(s))


def _squeeze_last(x):
    return reshape(x, shape=shape_of(x)[:-1])


def _diag(m):
    """The diagonal of the last two axes, (..., n, n) -> (..., n)."""
    return P.sum(multiply(m, np.eye(shape_of(m)[-1], dtype=_float(m))), axis=-1)


def _diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    return multiply(_expand(v, -2), np.eye(shape_of(v)[-1], dtype=_float(v)))


def _tril(x, k=0):
    n, m = shape_of(x)[-2:]
    return multiply(x, np.tri(n, m, k, dtype=_float(x)))


def _triu(x, k=0):
    n, m = shape_of(x)[-2:]
    return multiply(x, 1 - np.tri(n, m, k - 1, dtype=_float(x)))


def _read(t, uplo):
    """The symmetric matrix a function reading triangle ``uplo`` of ``t`` sees."""
    if uplo == "L":
        return add(_tril(t), _T(_tril(t, -1)))
    return add(_triu(t), _T(_triu(t, 1)))


def _read_adjoint(m, uplo):
    """The adjoint of :func:`_read`: a cotangent of the symmetric matrix onto the read triangle."""
    if uplo == "L":
        return add(_tril(m), _tril(_T(m), -1))
    return add(_triu(m), _triu(_T(m), 1))


def _gap_inverse(w):
    """F with F_ij = 1 / (w_j - w_i) where w_i != w_j, and 0 on the diagonal and between exactly
    equal values (eigh's and svd's rules). The derivative of the vectors is undefined between
    equal values; 0 there leaves the values' derivative exact (a zero cotangent of the vectors
    would otherwise meet 1/0 and give NaN) and is right for functions that do not depend on the
    choice of basis inside a repeated value's space (a projector). Near-equal values make F large."""
    d = subtract(_expand(w, -2), _expand(w, -1))
    same = P.equal(d, 0)  # a comparison: the positions, no derivative
    return P.where(same, 0.0, divide(1.0, P.where(same, 1.0, d)))


def _vec_rhs(b):
    # numpy >= 2: b is a vector right-hand side only when it is 1-D
    return ndim_of(b) == 1


def _solve_vec(a, v, vec):
    """solve(a, v) where v holds vectors (one per batch entry) when ``vec``: a batched vector
    right-hand side goes through as a column (numpy would read a 2-D v as a matrix)."""
    if not vec or ndim_of(v) == 1:
        return solve(a, v)
    return _squeeze_last(solve(a, _expand(v, -1)))


def _matvec(m, x):
    return P.sum(multiply(m, _expand(x, -2)), axis=-1)


# ---------------------------------------------------------------- solve
class _Shared:
    """The last b_bar = a^-T g that solve's reverse rules computed on plain arrays, with the g
    and a it came from: reverse mode asks for a's and b's cotangents one after the other with the
    same g and a, and both need b_bar (one solve instead of two). Identity decides, and the entry
    holds the objects, so their ids cannot be reused while it does; it is one tuple, replaced in
    one assignment (threads see a whole entry). Only plain arrays are kept (a recorded backward's
    Tensors would keep their graph alive)."""

    entry = (None, None, None)


def _solve_transposed(g, a, vec):
    last_g, last_a, gb = _Shared.entry
    if last_g is g and last_a is a:
        return gb
    gb = _solve_vec(_T(a), g, vec)
    if type(g) is np.ndarray and type(a) is np.ndarray:
        _Shared.entry = (g, a, gb)
    return gb


def _solve_vjp_a(g, ans, a, b):
    vec = _vec_rhs(b)
    gb = _solve_transposed(g, a, vec)
    ga = multiply(_expand(gb, -1), _expand(ans, -2)) if vec else matmul(gb, _T(ans))
    return unbroadcast(-ga, shape_of(a))


def _solve_vjp_b(g, ans, a, b):
    gb = _solve_transposed(g, a, _vec_rhs(b))
    _Shared.entry = (None, None, None)  # b's rule comes second: let go of the arrays
    return unbroadcast(gb, shape_of(b))


def _solve_jvp_a(t, ans, a, b):
    vec = _vec_rhs(b)
    return -_solve_vec(a, _matvec(t, ans) if vec else matmul(t, ans), vec)


solve = defprim("solve", _guarded("solve", np.linalg.solve), (_solve_vjp_a, _solve_vjp_b),
                (_solve_jvp_a, lambda t, ans, a, b: solve(a, t)),
                latex="{0}^{{-1}} {1}", display="solve",
                doc="x with a x = b (numpy.linalg.solve, batched). With x = a^-1 b: "
                    "b_bar = a^-T g, a_bar = -b_bar x^T; dx = a^-1 (db - da x).")

# ---------------------------------------------------------------- inv, det, slogdet
inv = defprim("inv", _guarded("inv", np.linalg.inv),
              (lambda g, ans, a: -matmul(_T(ans), matmul(g, _T(ans))),),
              (lambda t, ans, a: -matmul(ans, matmul(t, ans)),),
              latex="{0}^{{-1}}", display="inv",
              doc="The inverse a^-1 (batched). a_bar = -a^-T g a^-T; d(a^-1) = -a^-1 da a^-1.")


def _scalar_to_matrix(s):
    return _expand(_expand(s, -1), -1)


def _trace_product(m, t):
    # tr(m^T t) = sum_ij m_ij t_ij over the last two axes
    return P.sum(multiply(m, t), axis=(-2, -1))


det = defprim("det", np.linalg.det,
              (lambda g, ans, a: multiply(_scalar_to_matrix(multiply(g, ans)), _T(inv(a))),),
              (lambda t, ans, a: multiply(ans, _trace_product(_T(inv(a)), t)),),
              latex="\\det {0}", display="det",
              doc="det a (batched). a_bar = g det(a) a^-T; d det = det(a) tr(a^-1 da). The rules use "
                  "a^-1, so a singular a has no derivative here (numpy's LinAlgError).")


def _slogdet_impl(a):
    sign, logdet = np.linalg.slogdet(a)
    return np.stack([sign, logdet], axis=-1)


def _logdet_part(p):
    return getitem(p, index=(Ellipsis, 1))


def _slogdet_jvp(t, ans, a):
    d = _trace_product(_T(inv(a)), t)
    return P.stack(multiply(d, 0.0), d, axis=-1)  # the sign's tangent is 0


# The sign and log|det a| packed as (..., 2) so that one LAPACK call gives both; the sign is
# piecewise constant, so only the second entry's cotangent (or tangent) counts.
slogdet_packed = defprim("slogdet", _slogdet_impl,
                         (lambda g, ans, a: multiply(_scalar_to_matrix(_logdet_part(g)), _T(inv(a))),),
                         (_slogdet_jvp,),
                         latex="\\log\\left|\\det {0}\\right|", display="slogdet",
                         doc="(sign, log|det a|) packed along a last axis of 2 (batched); the sign is "
                             "piecewise constant (derivative 0). a_bar = g a^-T; d log|det a| = tr(a^-1 da).")

# ---------------------------------------------------------------- cholesky


def _phi(x):
    """The lower triangle with the diagonal halved (Murray's Phi)."""
    return subtract(_tril(x), multiply(0.5, _diag_embed(_diag(x))))


def _cholesky_vjp(g, ans, a):
    # dL = L Phi(L^-1 dA L^-T) for symmetric dA, so the cotangent of the symmetric matrix is
    # S = L^-T Phi(L^T g) L^-1, which the lower triangle read by numpy receives.
    lt = _T(ans)
    x = solve(lt, _phi(matmul(lt, g)))
    s = _T(solve(lt, _T(x)))
    return _read_adjoint(s, "L")


def _cholesky_jvp(t, ans, a):
    x = solve(ans, _read(t, "L"))
    return matmul(ans, _phi(_T(solve(ans, _T(x)))))


cholesky_lower = defprim("cholesky", _guarded("cholesky", np.linalg.cholesky), (_cholesky_vjp,), (_cholesky_jvp,),
                         latex="\\operatorname{{chol}}\\left({0}\\right)", display="cholesky",
                         doc="The lower Cholesky factor L of a = L L^T (batched), reading a's lower "
                             "triangle. dL = L Phi(L^-1 dA L^-T) with Phi the lower triangle, "
                             "diagonal halved (Murray 2016); a_bar = S on the read triangle for "
                             "S = L^-T Phi(L^T g) L^-1.")

# ---------------------------------------------------------------- eigh


def _eigh_impl(a, UPLO="L"):
    w, v = np.linalg.eigh(a, UPLO)
    return np.concatenate([w[..., None, :], v], axis=-2)


def _eigh_unpack(p):
    return getitem(p, index=(Ellipsis, 0, slice(None))), getitem(p, index=(Ellipsis, slice(1, None), slice(None)))


def _eigh_pack(w, v):
    return P.concatenate(_expand(w, -2), v, axis=-2)


def _eigh_vjp(g, ans, a, UPLO="L"):
    gw, gv = _eigh_unpack(g)
    w, v = _eigh_unpack(ans)
    inner = add(_diag_embed(gw), multiply(_gap_inverse(w), matmul(_T(v), gv)))
    return _read_adjoint(matmul(v, matmul(inner, _T(v))), UPLO)


def _eigh_jvp(t, ans, a, UPLO="L"):
    w, v = _eigh_unpack(ans)
    p = matmul(_T(v), matmul(_read(t, UPLO), v))
    return _eigh_pack(_diag(p), matmul(v, multiply(_gap_inverse(w), p)))


eigh_packed = defprim("eigh", _guarded("eigh", _eigh_impl), (_eigh_vjp,), (_eigh_jvp,),
                      latex="\\operatorname{{eigh}}\\left({0}\\right)", display="eigh",
                      doc="Eigenvalues w and eigenvectors V of a symmetric matrix (batched), packed as "
                          "one array [w; V] of shape (..., n+1, n). With P = V^T dA V: dw = diag(P), "
                          "dV = V (F o P), F_ij = 1/(w_j - w_i) (Giles 2008); a_bar = V (diag(w_bar) + "
                          "F o (V^T V_bar)) V^T on the read triangle. Between repeated eigenvalues "
                          "the eigenvectors' derivative is undefined: F is taken as 0 there (exact for "
                          "functions of the eigenvalues or of the repeated value's space).")

# ---------------------------------------------------------------- svd (reduced)


def _svd_impl(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    lead = s.shape[:-1]
    return np.concatenate([u.reshape(lead + (-1,)), s, vh.reshape(lead + (-1,))], axis=-1)


def _svd_unpack(p, ashape):
    m, n = ashape[-2:]
    k = min(m, n)
    lead = shape_of(p)[:-1]
    u = reshape(getitem(p, index=(Ellipsis, slice(0, m * k))), shape=lead + (m, k))
    s = getitem(p, index=(Ellipsis, slice(m * k, m * k + k)))
    vh = reshape(getitem(p, index=(Ellipsis, slice(m * k + k, None))), shape=lead + (k, n))
    return u, s, vh


def _svd_pack(u, s, vh):
    lead = shape_of(s)[:-1]
    return P.concatenate(reshape(u, shape=lead + (-1,)), s, reshape(vh, shape=lead + (-1,)), axis=-1)


def _svd_vjp(g, ans, a):
    # Townsend (2016): a_bar = U [(F o (U^T U_bar - U_bar^T U)) S + diag(s_bar)
    #   + S (F o (V^T V_bar - V_bar^T V))] V^T + (I - U U^T) U_bar S^-1 V^T + U S^-1 V_bar^T (I - V V^T)
    # with F_ij = 1 / (s_j^2 - s_i^2).
    ashape = shape_of(a)
    m, n = ashape[-2:]
    gu, gs, gvh = _svd_unpack(g, ashape)
    u, s, vh = _svd_unpack(ans, ashape)
    v, gv = _T(vh), _T(gvh)
    f = _gap_inverse(multiply(s, s))
    ut_gu = matmul(_T(u), gu)
    vt_gv = matmul(vh, gv)
    row, col = _expand(s, -1), _expand(s, -2)  # S X scales rows, X S scales columns
    inner = add(add(multiply(multiply(f, subtract(ut_gu, _T(ut_gu))), col), _diag_embed(gs)),
                multiply(row, multiply(f, subtract(vt_gv, _T(vt_gv)))))
    out = matmul(u, matmul(inner, vh))
    inv_s = divide(1.0, col)
    if m > min(m, n):  # U does not span R^m
        out = add(out, matmul(multiply(subtract(gu, matmul(u, ut_gu)), inv_s), vh))
    if n > min(m, n):  # V does not span R^n
        out = add(out, matmul(multiply(u, inv_s), subtract(gvh, matmul(_T(vt_gv), vh))))
    return out


def _svd_jvp(t, ans, a):
    # dP = U^T dA V, ds = diag(dP), dU = U (F o (dP S + S dP^T)) + (I - U U^T) dA V S^-1,
    # dV = V (F o (S dP + dP^T S)) + (I - V V^T) dA^T U S^-1 (Townsend 2016).
    ashape = shape_of(a)
    m, n = ashape[-2:]
    u, s, vh = _svd_unpack(ans, ashape)
    v = _T(vh)
    f = _gap_inverse(multiply(s, s))
    dp = matmul(_T(u), matmul(t, v))
    row, col = _expand(s, -1), _expand(s, -2)
    du = matmul(u, multiply(f, add(multiply(dp, col), multiply(row, _T(dp)))))
    dv = matmul(v, multiply(f, add(multiply(row, dp), multiply(_T(dp), col))))
    inv_s = divide(1.0, col)
    if m > min(m, n):
        tv = matmul(t, v)
        du = add(du, multiply(subtract(tv, matmul(u, matmul(_T(u), tv))), inv_s))
    if n > min(m, n):
        ttu = matmul(_T(t), u)
        dv = add(dv, multiply(subtract(ttu, matmul(v, matmul(vh, ttu))), inv_s))
    return _svd_pack(du, _diag(dp), _T(dv))


svd_packed = defprim("svd", _guarded("svd", _svd_impl), (_svd_vjp,), (_svd_jvp,),
                     latex="\\operatorname{{svd}}\\left({0}\\right)", display="svd",
                     doc="The reduced SVD a = U diag(s) V^T (batched), packed as one array "
                         "[U.ravel(), s, Vh.ravel()] along the last axis. Rules of Townsend (2016) with "
                         "F_ij = 1/(s_j^2 - s_i^2) (0 between repeated singular values, where the "
                         "singular vectors' derivative is undefined; the values' is exact), and a zero "
                         "singular value makes it infinite where U or V does not span the space.")

# ---------------------------------------------------------------- pinv


def _pinv_impl(a, rcond=None, hermitian=False):
    return np.linalg.pinv(a, hermitian=hermitian) if rcond is None else np.linalg.pinv(a, rcond, hermitian)


def _eye_like(x, axis):
    return np.eye(shape_of(x)[axis], dtype=_float(x))


def _pinv_vjp(g, ans, a, rcond=None, hermitian=False):
    # adjoint of the forward rule below: -P^T g P^T + (I - a P) g^T P P^T + P^T P g^T (I - P a)
    pt = _T(ans)
    gt = _T(g)
    out = -matmul(pt, matmul(g, pt))
    out = add(out, matmul(subtract(_eye_like(a, -2), matmul(a, ans)), matmul(gt, matmul(ans, pt))))
    return add(out, matmul(matmul(pt, matmul(ans, gt)), subtract(_eye_like(a, -1), matmul(ans, a))))


def _pinv_jvp(t, ans, a, rcond=None, hermitian=False):
    # Golub and Pereyra (1973): dP = -P dA P + P P^T dA^T (I - a P) + (I - P a) dA^T P^T P
    pt, tt = _T(ans), _T(t)
    out = -matmul(ans, matmul(t, ans))
    out = add(out, matmul(matmul(ans, pt), matmul(tt, subtract(_eye_like(a, -2), matmul(a, ans)))))
    return add(out, matmul(subtract(_eye_like(a, -1), matmul(ans, a)), matmul(tt, matmul(pt, ans))))


pinv = defprim("pinv", _guarded("pinv", _pinv_impl), (_pinv_vjp,), (_pinv_jvp,),
               latex="{0}^{{+}}", display="pinv",
               doc="The Moore-Penrose pseudo-inverse P = a^+ (batched). dP = -P da P + P P^T da^T (I - a P) "
                   "+ (I - P a) da^T P^T P (Golub and Pereyra 1973): the derivative where the rank is "
                   "constant (full rank, or rcond not cutting a singular value near its threshold).")


# ---------------------------------------------------------------- the public functions (numpy's signatures)
def _result(name, *values):
    # numpy's named tuples (EighResult, SVDResult, SlogdetResult) where this numpy has them
    cls = getattr(getattr(np.linalg, "_linalg", None), name, None)
    return cls(*values) if cls is not None else tuple(values)


def _square(name, a):
    shape = shape_of(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"numpy.linalg.{name}: needs square matrices in the last two axes, got shape {shape}")


@implements(np.linalg.solve)
def linalg_solve(a, b):
    """x with a @ x = b, batched over leading axes as numpy.linalg.solve."""
    if not has_box((a, b)):
        return np.linalg.solve(a, b)
    a, b = _arr(a), _arr(b)
    _square("solve", a)
    return solve(a, b)


def _of_square(name, numpy_fn, primitive, doc):
    """numpy.linalg's ``name`` of square matrices (batched): numpy's own call on plain data, the
    primitive on chainrule values."""
    def fn(a):
        if not has_box(a):
            return numpy_fn(a)
        a = _arr(a)
        _square(name, a)
        return primitive(a)

    fn.__name__ = fn.__qualname__ = f"linalg_{name}"
    fn.__doc__ = doc
    return implements(numpy_fn)(fn)


linalg_inv = _of_square("inv", np.linalg.inv, inv, "The inverse of square matrices (batched).")
linalg_det = _of_square("det", np.linalg.det, det, "The determinant of square matrices (batched).")


@implements(np.linalg.slogdet)
def linalg_slogdet(a):
    """(sign, log|det a|) of square matrices (batched); the sign is piecewise constant, so it is a
    plain array (no derivative), and log|det a| carries the derivative."""
    if not has_box(a):
        return np.linalg.slogdet(a)
    a = _arr(a)
    _square("slogdet", a)
    p = slogdet_packed(a)
    try:
        sign = concrete(p)[..., 0]  # piecewise constant: a plain array
    except ConcretizationError:  # a value with no single plain value (inside cr.vmap): derivative 0 by the rules
        sign = getitem(p, index=(Ellipsis, 0))
    return _result("SlogdetResult", sign, _logdet_part(p))


@implements(np.linalg.cholesky)
def linalg_cholesky(a, /, *, upper=False):
    """The Cholesky factor of symmetric positive-definite matrices (batched): lower L with
    a = L L^T, or with ``upper=True`` U = L^T (read from a's upper triangle, as numpy)."""
    if not has_box(a):
        return np.linalg.cholesky(a, upper=upper) if upper else np.linalg.cholesky(a)
    a = _arr(a)
    _square("cholesky", a)
    return _T(cholesky_lower(_T(a))) if upper else cholesky_lower(a)


@implements(np.linalg.eigh)
def linalg_eigh(a, UPLO="L"):
    """(eigenvalues, eigenvectors) of symmetric matrices (batched), reading triangle ``UPLO``.

    Limit: where two eigenvalues are equal the eigenvectors are not unique and their derivative
    is undefined; chainrule takes its part inside the repeated eigenvalue's space as 0, which is
    right for functions of the eigenvalues (always) and of the space (a projector), not for one of a
    single eigenvector there. Nearly equal eigenvalues give large, ill-conditioned derivatives."""
    if UPLO not in ("L", "U"):
        raise ValueError(f"numpy.linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    if not has_box(a):
        return np.linalg.eigh(a, UPLO)
    a = _arr(a)
    _square("eigh", a)
    return _result("EighResult", *_eigh_unpack(eigh_packed(a, UPLO=UPLO) if UPLO == "U" else eigh_packed(a)))


@implements(np.linalg.eigvalsh)
def linalg_eigvalsh(a, UPLO="L"):
    """The eigenvalues of symmetric matrices (batched)."""
    if not has_box(a):
        return np.linalg.eigvalsh(a, UPLO)
    return linalg_eigh(a, UPLO)[0]


@implements(np.linalg.svd)
def linalg_svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """The singular value decomposition (batched), as numpy.linalg.svd.

    On chainrule values the factors are the reduced ones: ``full_matrices=True`` of a non-square
    matrix is refused (the extra columns are not unique, so they have no derivative). Limits:
    between repeated singular values the singular vectors' derivative is undefined (its part there
    is taken as 0; the values' derivative is exact); ``hermitian`` is accepted and the general SVD is computed."""
    if not has_box(a):
        return np.linalg.svd(a, full_matrices, compute_uv, hermitian)
    a = _arr(a)
    shape = shape_of(a)
    if len(shape) < 2:
        raise ShapeError(f"numpy.linalg.svd: needs matrices in the last two axes, got shape {shape}")
    u, s, vh = _svd_unpack(svd_packed(a), shape)
    if not compute_uv:
        return s
    if full_matrices and shape[-1] != shape[-2]:
        raise ValueError(f"numpy.linalg.svd: full_matrices=True of a {shape[-2]}x{shape[-1]} matrix has extra "
                         "singular vectors that are not unique, so they have no derivative; pass "
                         "full_matrices=False")
    return _result("SVDResult", u, s, vh)


@implements(getattr(np.linalg, "svdvals", None))
def linalg_svdvals(x, /):
    """The singular values (batched)."""
    if not has_box(x):
        return np.linalg.svdvals(x)
    return linalg_svd(x, compute_uv=False)


@implements(np.linalg.pinv)
def linalg_pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    """The Moore-Penrose pseudo-inverse (batched); its derivative is the one where the rank does
    not change."""
    if not has_box(a):
        kw = {} if rtol is np._NoValue else {"rtol": rtol}
        return np.linalg.pinv(a, rcond, hermitian, **kw) if rcond is not None else np.linalg.pinv(a, hermitian=hermitian, **kw)
    if rtol is not np._NoValue and rtol is not None:
        rcond = rtol
    a = _arr(a)
    return pinv(a, rcond=rcond, hermitian=hermitian) if rcond is not None or hermitian else pinv(a)


# ---------------------------------------------------------------- norm (a composition)
def _vector_norm(x, ord, axis, keepdims):
    ax = axis
    if ord is None or ord == 2:
        return P.sqrt(P.sum(multiply(x, x), axis=ax, keepdims=keepdims))
    if ord == np.inf:
        return P.max(P.abs(x), axis=ax, keepdims=keepdims)
    if ord == -np.inf:
        return -P.max(-P.abs(x), axis=ax, keepdims=keepdims)
    if ord == 0:  # the number of nonzero entries: piecewise constant
        return P.sum(P.astype(P.not_equal(x, 0), dtype=P.dtype_of(x)), axis=ax, keepdims=keepdims)
    if ord == 1:
        return P.sum(P.abs(x), axis=ax, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"numpy.linalg.norm: invalid norm order {ord!r} for vectors")
    return P.power(P.sum(P.power(P.abs(x), float(ord)), axis=ax, keepdims=keepdims), 1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    nd = ndim_of(x)
    if ord in (2, -2, "nuc"):
        rest = [i for i in range(nd) if i not in (r, c)]
        s = linalg_svd(P.transpose(x, axes=tuple(rest) + (r, c)), compute_uv=False)
        out = P.max(s, axis=-1) if ord == 2 else -P.max(-s, axis=-1) if ord == -2 else P.sum(s, axis=-1)
    elif ord in (None, "fro"):
        out = P.sqrt(P.sum(multiply(x, x), axis=axes))
    elif ord in (1, -1, np.inf, -np.inf):
        # 1: the largest column sum of |x| (sum over rows); inf: the largest row sum
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        sums = P.sum(P.abs(x), axis=inner)
        outer -= outer > inner
        out = P.max(sums, axis=outer) if ord in (1, np.inf) else -P.max(-sums, axis=outer)
    else:
        raise ValueError(f"numpy.linalg.norm: invalid norm order {ord!r} for matrices")
    if keepdims:
        shape = list(shape_of(x))
        shape[r] = shape[c] = 1
        out = reshape(out, shape=tuple(shape))
    return out


@implements(np.linalg.norm)
def linalg_norm(x, ord=None, axis=None, keepdims=False):
    r"""numpy.linalg.norm with every order: vector norms $(\sum_i |x_i|^p)^{1/p}$, inf, -inf, 0
    (a count: derivative 0), and matrix norms 'fro', 'nuc' (sum of singular values), 2 and -2
    (largest and smallest singular value), 1, -1, inf, -inf (largest or smallest column or row sum
    of |x|). The derivative of a norm is undefined where it is 0 (and where a max has ties)."""
    if not has_box(x):
        return np.linalg.norm(x, ord, axis, keepdims)
    x = _arr(x)
    nd = ndim_of(x)
    if axis is None:
        if ord is None:  # the 2-norm of the flattened values, whatever the rank
            out = P.sqrt(P.sum(multiply(x, x)))
            return reshape(out, shape=(1,) * nd) if keepdims else out
        if nd == 1:
            return _vector_norm(x, ord, None, keepdims)
        if nd == 2:
            return _matrix_norm(x, ord, (0, 1), keepdims)
        raise ValueError("numpy.linalg.norm: improper number of dimensions to norm")
    axes = _norm_axis(axis, nd)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError("numpy.linalg.norm: duplicate axes given")
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError("numpy.linalg.norm: improper number of dimensions to norm")


@implements(getattr(np.linalg, "vector_norm", None))
def linalg_vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """numpy.linalg.vector_norm: the norm of the flattened values (axis None) or along axes."""
    if not has_box(x):
        return np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    x = _arr(x)
    if axis is None:
        out = _vector_norm(reshape(x, shape=(-1,)), ord, 0, False)
        return reshape(out, shape=(1,) * ndim_of(x)) if keepdims else out
    if isinstance(axis, tuple) and len(axis) > 1:
        if ord not in (None, 2):
            raise ValueError("numpy.linalg.vector_norm: on chainrule values, several axes need ord=2")
        return P.sqrt(P.sum(multiply(x, x), axis=_norm_axis(axis, ndim_of(x)), keepdims=keepdims))
    return _vector_norm(x, ord, _norm_axis(axis, ndim_of(x))[0], keepdims)


@implements(getattr(np.linalg, "matrix_norm", None))
def linalg_matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """numpy.linalg.matrix_norm: the norm of the last two axes."""
    if not has_box(x):
        return np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    x = _arr(x)
    nd = ndim_of(x)
    return _matrix_norm(x, ord, (nd - 2, nd - 1), keepdims)


# ---------------------------------------------------------------- compositions of the primitives above
@implements(np.linalg.matrix_power)
def linalg_matrix_power(a, n):
    r"""$a^n$ for an integer n by repeated squaring (n < 0: powers of $a^{-1}$; n = 0: the
    identity, which carries no derivative); batched over leading axes."""
    if not has_box(a):
        return np.linalg.matrix_power(a, n)
    a = _arr(a)
    _square("matrix_power", a)
    n = operator.index(n)
    if n == 0:
        return np.broadcast_to(np.eye(shape_of(a)[-1], dtype=P.dtype_of(a)), shape_of(a)).copy()
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:  # binary powering: about 2 log2(n) products, each differentiated as a matmul
        if n & 1:
            result = a if result is None else matmul(result, a)
        n >>= 1
        if n:
            a = matmul(a, a)
    return result


@implements(np.linalg.multi_dot)
def linalg_multi_dot(arrays, *, out=None):
    """The product of a chain of matrices (the first may be a vector, the last too), multiplied
    left to right: the value is numpy's up to rounding (numpy picks the cheapest order)."""
    arrays = list(arrays)
    if not has_box(arrays):
        return np.linalg.multi_dot(arrays, out=out)
    if out is not None:
        raise TypeError("numpy.linalg.multi_dot: out= is not supported on chainrule values")
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    result = _arr(arrays[0])
    for m in arrays[1:]:
        result = matmul(result, _arr(m))
    return result


@implements(np.linalg.tensorinv)
def linalg_tensorinv(a, ind=2):
    """The inverse of a as a linear map from its last axes to its first ``ind`` axes: inv of
    the matrix that reshaping makes of it (its derivative is inv's)."""
    if not has_box(a):
        return np.linalg.tensorinv(a, ind)
    a = _arr(a)
    shape = shape_of(a)
    rows, cols = shape[:ind], shape[ind:]
    n = int(np.prod(rows))
    if ind <= 0 or n != int(np.prod(cols)):
        raise ShapeError(f"numpy.linalg.tensorinv: the first {ind} axes {rows} and the rest {cols} must hold "
                         "as many entries each")
    return reshape(inv(reshape(a, shape=(n, n))), shape=cols + rows)


@implements(np.linalg.tensorsolve)
def linalg_tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b: solve on the matrix that reshaping makes of a."""
    if not has_box((a, b)):
        return np.linalg.tensorsolve(a, b, axes)
    if axes is not None:
        raise TypeError("numpy.linalg.tensorsolve: axes= is not supported on chainrule values; "
                        "move the axes first with cr.numpy.moveaxis")
    a, b = _arr(a), _arr(b)
    bshape, ashape = shape_of(b), shape_of(a)
    xshape = ashape[len(bshape):]
    n = int(np.prod(bshape))
    if n != int(np.prod(xshape)):
        raise ShapeError(f"numpy.linalg.tensorsolve: a's shape {ashape} does not fit b's {bshape}")
    return reshape(solve(reshape(a, shape=(n, n)), reshape(b, shape=(n,))), shape=xshape)


@implements(np.linalg.lstsq)
def linalg_lstsq(a, b, rcond=None):
    """numpy's (x, residuals, rank, singular values) for min ||a x - b||: x = pinv(a) b, so its
    derivative is pinv's (where a's rank is constant); residuals are the squared norms of
    a x - b when a has full column rank and more rows than columns (else empty, as numpy's);
    the singular values are svdvals(a), differentiable too; the rank is a plain integer
    (piecewise constant)."""
    if not has_box((a, b)):
        return np.linalg.lstsq(a, b, rcond=rcond)
    a, b = _arr(a), _arr(b)
    ashape = shape_of(a)
    if len(ashape) != 2:
        raise ShapeError(f"numpy.linalg.lstsq: a must be a matrix, got shape {ashape}")
    plain = np.linalg.lstsq(concrete(a), concrete(b), rcond=rcond)
    rank = plain[2]
    x = matmul(pinv(a), b) if rcond is None else matmul(pinv(a, rcond=rcond), b)
    if rank == ashape[1] and ashape[0] > ashape[1]:
        r = subtract(matmul(a, x), b)
        residuals = P.sum(multiply(r, r), axis=0)
        residuals = reshape(residuals, shape=(1,)) if len(shape_of(b)) == 1 else residuals
    else:
        residuals = plain[1]
    return x, residuals, rank, linalg_svdvals(a)


# ---------------------------------------------------------------- forward mode with a batch of tangents
# The forward rules above broadcast over leading axes, so a batch of B tangents (a leading axis,
# see chainrule.modes.forward) goes through each rule in one call instead of B: a Jacobian or a
# Hessian by forward mode solves, inverts or multiplies once. Read by chainrule.modes.forward.
def _one_argument(prim):
    rule = prim.jvps[0]
    return lambda ts, ans, primals, params, batch: rule(ts[0], ans, *primals, **params)


def _pad(t, x, rank):
    """A batched tangent of ``x`` with size-1 axes after the batch axis up to ``rank`` axes of
    ``x`` (so its leading axes line up with the other arguments' under broadcasting)."""
    xs = shape_of(x)
    extra = rank - len(xs)
    return reshape(t, shape=(shape_of(t)[0],) + (1,) * extra + xs) if extra > 0 else t


def _solve_batched(ts, ans, primals, params, batch):
    a, b = primals
    ta, tb = ts
    rank = ndim_of(ans)
    out = None
    if ta is not None:
        out = _solve_jvp_a(_pad(ta, a, rank), ans, a, b)
    if tb is not None:
        vec = _vec_rhs(b)
        c = _solve_vec(a, _pad(tb, b, rank if not vec else ndim_of(a) - 1), vec)
        out = c if out is None else add(out, c)
    return out


BATCHED = {"solve": _solve_batched, **{op.primitive.name: _one_argument(op.primitive) for op in (
    inv, det, slogdet_packed, cholesky_lower, eigh_packed, svd_packed, pinv)}}
