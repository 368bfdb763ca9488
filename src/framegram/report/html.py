"""A self-contained HTML report built from sections (pictures inlined as base64 PNG).

Each capability contributes `Section`s; the report sorts them by `order` and writes one file.
File names, model names and messages end up in the page, so text is escaped here, in one place:
a section's title is text; its body is a part or a list of parts in which only `Html` (what the
helpers below return, or `Html(...)` around markup built from trusted pieces) is markup, and any
other string is text.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from framegram.io.atomic import atomic_write_bytes

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.4em 0 .4em} img{max-width:100%} .muted{color:#777;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0} th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
nav a{margin-right:1em}
"""


class Html(str):
    """Trusted markup: written into the page as it is. Any other string part of a section is text."""


def markup(part: str) -> Html:
    """`part` as markup: itself when it is `Html`, else the text escaped."""
    return part if isinstance(part, Html) else Html(html.escape(part))


@dataclass
class Section:
    """One part of the report: a heading (text) and a body. Lower `order` comes first.

    body: one part or a list of parts, each `Html` (markup) or another string (text, escaped);
    `body` is the section's markup once it is made.
    """

    title: str
    body: str | Sequence[str]
    order: int = 100
    anchor: str = field(default="")

    def __post_init__(self):
        parts = [self.body] if isinstance(self.body, str) else self.body
        self.body = Html("\n".join(markup(part) for part in parts))
        if not self.anchor:
            self.anchor = "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass
class Report:
    title: str
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def to_html(self) -> str:
        ordered = sorted(self.sections, key=lambda s: s.order)
        nav = " ".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in ordered)
        body = "\n".join(f'<h2 id="{html.escape(s.anchor)}">{html.escape(s.title)}</h2>\n{s.body}' for s in ordered)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"<p class='muted'>generated {stamp}</p><nav>{nav}</nav>\n{body}\n</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_bytes(path, self.to_html().encode("utf-8"))
        return path


def figure_png(fig) -> bytes:
    """The matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def figure_img(fig, alt: str = "") -> Html:
    """An <img> holding the matplotlib figure as inline PNG (the figure is closed)."""
    return png_img(figure_png(fig), alt)


def png_img(png: bytes, alt: str = "") -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')


def array_img(image: np.ndarray, alt: str = "") -> Html:
    """An <img> of a uint8 [H, W, 3] (or [H, W]) array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return png_img(buf.getvalue(), alt)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Html:
    """An HTML table of text cells (escaped); floats are shown with 2 decimals."""

    def cell(value: object) -> str:
        return html.escape(f"{value:.2f}" if isinstance(value, float) else str(value))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def paragraph(text: str) -> Html:
    """A paragraph of text (escaped)."""
    return Html(f"<p>{html.escape(text)}</p>")


def heading(text: str, level: int = 3) -> Html:
    """A sub-heading of text (escaped) inside a section (whose own title is an h2)."""
    return Html(f"<h{level}>{html.escape(text)}</h{level}>")
