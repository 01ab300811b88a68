"""Views of a computation: traces, trace tables, graph drawings, cost accounting, training steps."""
from chainrule.viz.cost import Cost, cost
from chainrule.viz.dot import GraphTooLargeError, GraphvizError, draw, to_dot
from chainrule.viz.step import Step, explain_step
from chainrule.viz.tables import FORMATS, Table, fmt_value
from chainrule.viz.trace import Graph, Node, group, name, trace


def __getattr__(name):
    # The figures need matplotlib: loaded on first use only.
    if name in ("crossover_figure", "symbolic_growth_figure", "measure_crossover", "measure_symbolic_growth"):
        from chainrule.viz import figures

        return getattr(figures, name)
    raise AttributeError(f"module 'chainrule.viz' has no attribute {name!r}")


__all__ = ["trace", "name", "group", "Graph", "Node", "Table", "FORMATS", "fmt_value", "to_dot", "draw",
           "GraphvizError", "GraphTooLargeError", "explain_step", "Step", "cost", "Cost",
           "crossover_figure", "symbolic_growth_figure", "measure_crossover", "measure_symbolic_growth"]
