"""Rendering a :class:`~leopardgeo.report.document.Report` as ``report.md`` and a self-contained ``report.html``.

The HTML is rendered from the sections directly (not through a Markdown
converter): tables come from the data frames, text needs only ``**bold**`` and
```code``` inline, so a converter dependency buys nothing.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from leopardgeo.core.version import __version__
from leopardgeo.report.document import Bullets, Figure, Report, Table, inline_html, markdown_table


def render_markdown(report: Report) -> str:
    """``report.md``: the sections as Markdown, figures as relative links to the PNG files."""
    lines = [f"# {report.title}", "", f"Generated {report.summary.get('generated', '')} by leopardgeo {__version__}.", ""]
    lines += ["Contents: " + " · ".join(f"[{s.title}](#{s.anchor or _slug(s.title)})" for s in report.sections), ""]
    for sec in report.sections:
        lines += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if isinstance(b, Table):
                if b.caption:
                    lines += [f"**{b.caption}**", ""]
                lines += [markdown_table(b.frame), ""]
                if b.note:
                    lines += [f"*{b.note}*", ""]
            elif isinstance(b, Bullets):
                lines += [f"- {item}" for item in b.items] + [""]
            elif isinstance(b, Figure):
                lines += [f"![{b.caption or b.name}]({b.name})", ""]
                if b.caption:
                    lines += [f"*{b.caption}*", ""]
            else:
                lines += [b, ""]
    return "\n".join(lines).rstrip() + "\n"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#222;
background:#fafafa;line-height:1.45}
header{background:#1b3a2a;color:#fff;padding:.7em 2em}header h1{margin:0;font-size:1.4em}
header p{margin:.3em 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #ddd;padding:.6em 2em;position:sticky;top:0;z-index:2;font-size:.95em}
nav a{margin-right:1.1em;color:#1b5e20;text-decoration:none}nav a:hover{text-decoration:underline}
main{max-width:1150px;margin:0 auto;padding:1em 2em 3em}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:.6em 1.4em 1.2em;margin:1.2em 0}
h2{color:#1b3a2a;border-bottom:2px solid #e0e8e2;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0 .3em;font-size:.88em;max-width:100%;display:block;overflow-x:auto}
caption{text-align:left;font-weight:600;padding:.3em 0;color:#333}
th,td{border-bottom:1px solid #e6e6e6;padding:.25em .7em;text-align:left;vertical-align:top}
th{background:#f0f4f1;position:sticky;top:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f7faf8}.note{color:#666;font-size:.85em;margin:.1em 0 1em}
figure{margin:1em 0}figure img{width:900px;max-width:100%;height:auto;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em;margin-top:.3em}code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
ul.key{background:#f3f7f4;border-left:4px solid #1b5e20;padding:.6em 1em .6em 2em;margin:.4em 0 1em}
ul.key li{margin:.25em 0}
footer{color:#777;font-size:.85em;text-align:center;padding:2em}
"""


def _html_table(t: Table) -> str:
    frame = t.frame

    def numeric(col: str) -> bool:
        vals = [str(v) for v in frame[col] if str(v) not in ("", "-")]
        return bool(vals) and all(re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?\s*%?", v) for v in vals)

    num = [numeric(str(c)) for c in frame.columns]
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{inline_html(t.caption)}</caption>")
    heads = "".join(f'<th{" class=num" if n else ""}>{html.escape(str(c))}</th>' for c, n in zip(frame.columns, num, strict=True))
    out.append(f"<thead><tr>{heads}</tr></thead><tbody>")
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{html.escape(str(v))}</td>' for v, n in zip(row, num, strict=True))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    if t.note:
        out.append(f'<p class="note">{inline_html(t.note)}</p>')
    return "\n".join(out)


def _html_figure(f: Figure) -> str:
    data = base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    alt = html.escape(f.caption or f.name)
    cap = f"<figcaption>{inline_html(f.caption)} <code>{html.escape(f.name)}</code></figcaption>" if f.caption else ""
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'


def render_html(report: Report) -> str:
    """``report.html``: one self-contained page (inline CSS, maps as base64 PNG, no external resource)."""
    nav = "".join(f'<a href="#{s.anchor or _slug(s.title)}">{html.escape(s.title)}</a>' for s in report.sections)
    body = []
    for sec in report.sections:
        body.append(f'<section id="{sec.anchor or _slug(sec.title)}"><h2>{html.escape(sec.title)}</h2>')
        for b in sec.blocks:
            if isinstance(b, Table):
                body.append(_html_table(b))
            elif isinstance(b, Figure):
                body.append(_html_figure(b))
            elif isinstance(b, Bullets):
                body.append('<ul class="key">' + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
            else:
                body.append(f"<p>{inline_html(b)}</p>")
        body.append("</section>")
    gen = html.escape(str(report.summary.get("generated", "")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(report.title)}</h1><p>{html.escape(report.out_dir.resolve().name)} · generated {gen} "
        f"· leopardgeo {html.escape(__version__)}</p></header><nav>{nav}</nav><main>\n"
        + "\n".join(body)
        + "\n</main><footer>Modelled results: suitability, territories, capacity and persistence are model outputs, "
        "not observations. Data sources and what is approximate: see the data README.</footer></body></html>\n"
    )


