"""Views of a computation: traces, trace tables, graph drawings, cost accounting, training steps."""
from chainrule.viz.tables import FORMATS, Table, fmt_value
from chainrule.viz.trace import Graph, Node, group, name, trace

__all__ = ["trace", "name", "group", "Graph", "Node", "Table", "FORMATS", "fmt_value"]
