"""Random compositions of primitives for the property tests of reverse and forward mode."""
from hypothesis import strategies as st


def programs(n_unary, n_binary):
    """Programs of 1 to 6 steps, each (unary op, binary op, which earlier value to start from)."""
    return st.lists(st.tuples(st.integers(0, n_unary - 1), st.integers(0, n_binary - 1), st.integers(0, 5)),
                    min_size=1, max_size=6)


def run(program, x, y, unary, binary):
    """The program's last value: each step appends binary(unary(an earlier value), the last value)."""
    values = [x, y]
    for u, b, k in program:
        values.append(binary[b](unary[u](values[k % len(values)]), values[-1]))
    return values[-1]
