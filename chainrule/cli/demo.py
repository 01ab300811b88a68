"""`chainrule demo`: the lecture's differentiation quiz, by reverse mode, in one command."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("demo", help="differentiate the lecture's quiz function by backpropagation",
                       description="y = exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z), its value and gradient.")
    p.add_argument("--x", type=float, default=2.0, help="value of x (default 2)")
    p.add_argument("--z", type=float, default=3.0, help="value of z (default 3)")
    p.set_defaults(func=run)


def run(args):
    import chainrule as cr
    from chainrule.cli import UsageError

    if args.x <= 0:
        raise UsageError(f"--x must be positive (ln(x) appears in the function), got {args.x}")
    x = cr.tensor(args.x, requires_grad=True)
    z = cr.tensor(args.z, requires_grad=True)
    xz = x * z
    y = cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz
    y.backward()
    print("y = exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)")
    print(f"at x = {args.x:g}, z = {args.z:g}:  y = {y.item():.10g}")
    print(f"dy/dx = {x.grad.item():.13g}")
    print(f"dy/dz = {z.grad.item():.13g}")
    return 0
