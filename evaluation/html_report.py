"""A self-contained HTML report: headings with a table of contents, text, tables and figures.

No external CSS, JavaScript or images: the style is inline and figures are embedded as base64 PNG.
Every piece of user text (titles, paragraphs, table cells and column names) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MISSING = "–"
_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.1em; }
.subtitle { color: #555; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
nav.toc { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 0.5em 1.2em; display: inline-block; }
nav.toc ol { margin: 0.3em 0; padding-left: 1.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
caption { caption-side: bottom; text-align: left; color: #555; padding-top: 0.4em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f0f2f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
table.kv th { width: 14em; }
.table-wrap { overflow-x: auto; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
footer { margin-top: 3em; color: #888; font-size: 0.8em; border-top: 1px solid #eee; padding-top: 0.5em; }
"""


def format_cell(value: object) -> tuple[str, bool]:
    """Escaped text of one table cell and whether it is numeric (right-aligned)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING, False
    if isinstance(value, bool):
        return html.escape(str(value)), False
    if isinstance(value, numbers.Integral):
        return html.escape(str(int(value))), True
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return MISSING, True
        if math.isinf(v):
            return ("∞" if v > 0 else "−∞"), True
        text = f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
        return html.escape(text), True
    if isinstance(value, pd.Timestamp):
        text = str(value.date()) if value == value.normalize() else value.isoformat(timespec="minutes")
        return html.escape(text), False
    return html.escape(str(value)), False


class HtmlReport:
    """Builds one self-contained HTML page; add elements in order, then :meth:`to_html` or :meth:`write`."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._blocks: list[str] = []
        self._toc: list[tuple[str, str]] = []  # (anchor, escaped heading)

    def add_heading(self, text: str) -> None:
        """A section heading (h2), also listed in the table of contents."""
        anchor = f"section-{len(self._toc) + 1}"
        self._toc.append((anchor, html.escape(text)))
        self._blocks.append(f'<h2 id="{anchor}">{html.escape(text)}</h2>')

    def add_paragraph(self, text: str) -> None:
        """A paragraph of plain text."""
        self._blocks.append(f"<p>{html.escape(text)}</p>")

    def add_kv(self, items: dict[str, str]) -> None:
        """A two-column key/value table."""
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in items.items())
        self._blocks.append(f'<table class="kv"><tbody>{rows}</tbody></table>')

    def add_table(self, df: pd.DataFrame, caption: str = "") -> None:
        """A data frame as a table: floats to 4 significant digits, missing values as "–"."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
        body = []
        for row in df.itertuples(index=False, name=None):
            cells = []
            for value in row:
                text, numeric = format_cell(value)
                cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._blocks.append(f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
                            f"<tbody>{''.join(body)}</tbody></table></div>")

    def add_figure(self, fig, caption: str = "") -> None:
        """A matplotlib figure embedded as a base64 PNG; the figure is closed afterwards."""
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        finally:
            plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        alt = html.escape(caption or "figure", quote=True)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>')

    def to_html(self) -> str:
        """The whole page as a string (the footer carries the UTC time of this call)."""
        now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<header><h1>{html.escape(self.title)}</h1>",
        ]
        if self.subtitle:
            parts.append(f'<p class="subtitle">{html.escape(self.subtitle)}</p>')
        parts.append("</header>")
        if self._toc:
            items = "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in self._toc)
            parts.append(f'<nav class="toc"><strong>Contents</strong><ol>{items}</ol></nav>')
        parts.append("<main>")
        parts.extend(self._blocks)
        parts.append("</main>")
        parts.append(f"<footer>Generated at {now} by ecrm.</footer>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def write(self, path: Path) -> Path:
        """Write the page atomically (temp file in the same folder, then rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_html()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be read
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
