"""Complete HTML pages around the views' fragments: one stylesheet, so every page reads the same."""
from __future__ import annotations

import html

__all__ = ["STYLE", "html_page", "html_table"]

# Readable on screen and on paper: a serif-free body, tables with rules between rows, numbers
# aligned, the multi-line chain-rule cells kept apart from their neighbours.
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.45;
       max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.15rem; margin-top: 1.75rem; }
code, .formula { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.formula { font-size: 1.05rem; background: #f5f5f7; padding: .5rem .75rem; border-radius: 6px; }
table.chainrule-trace, table.chainrule { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
table.chainrule-trace caption, table.chainrule caption { text-align: left; font-weight: 600; padding-bottom: .4rem; }
table.chainrule-trace caption small { font-weight: 400; color: #555; }
table.chainrule-trace th, table.chainrule-trace td, table.chainrule th, table.chainrule td {
  border-bottom: 1px solid #d2d2d7; padding: .3rem .7rem; text-align: left; vertical-align: top; }
table.chainrule-trace th, table.chainrule th { background: #f5f5f7; border-bottom: 2px solid #86868b; }
table.chainrule-trace td:nth-child(1) { font-weight: 600; }
table.chainrule-trace.blank td { height: 1.8rem; min-width: 5rem; }
ol.options { list-style: upper-alpha; } .key { color: #0b6b1f; }
img { max-width: 100%; height: auto; }
"""


def html_page(title: str, body: str) -> str:
    """``body`` (HTML) as a complete page: doctype, head with charset, title and the stylesheet.
    Every tag is closed (XHTML-style), so the page also parses as XML when the body does.

    >>> html_page("x < y", "<p>hi</p>").startswith("<!DOCTYPE html>")
    True
    """
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


def html_table(header, rows, caption=None, numeric=()) -> str:
    """A plain HTML table (class ``chainrule``) of text cells, escaped; columns in ``numeric`` are
    right-aligned. The notebook displays (``_repr_html_``) of reports, models and histories use it.

    >>> html_table(["a", "b"], [["1", "x<y"]], caption="t")
    '<table class="chainrule"><caption>t</caption><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>x&lt;y</td></tr></tbody></table>'
    """
    def cell(tag, j, c):
        align = ' style="text-align:right"' if j in numeric else ""
        return f"<{tag}{align}>{html.escape(str(c))}</{tag}>"

    out = ['<table class="chainrule">']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(cell("th", j, h) for j, h in enumerate(header)) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(cell("td", j, c) for j, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)
