"""``python -m chainrule.numpy``: print the coverage table that README.md shows."""
from chainrule.numpy import coverage_table

print(coverage_table())
