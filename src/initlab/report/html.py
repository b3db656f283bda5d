"""Building blocks of the self-contained HTML page: escaping, tables, inline figures,
layer selectors and the page shell.

The page has no external resource: figures are ``data:image/png;base64`` URIs, styles
and scripts are inline. Scripts are progressive: without JavaScript every layer's
figures are shown one after another; with it a ``<select>`` shows one layer at a time.

A small script in ``<head>`` counts JavaScript errors, failed resource loads and
``console.error`` calls into ``<html data-errors="N">`` (and their messages into
``data-error-messages``), and sets ``data-ready="1"`` on ``load``, so a headless browser
can prove the page rendered cleanly from its DOM alone.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

from initlab.report.plotting import Figure

__all__ = ["esc", "figure", "layer_block", "layer_selector", "page", "table"]

_ERROR_CAPTURE = """
(function () {
  var root = document.documentElement, n = 0, msgs = [];
  root.setAttribute('data-errors', '0');
  function mark(m) {
    n += 1; msgs.push(String(m).slice(0, 300));
    root.setAttribute('data-errors', String(n));
    root.setAttribute('data-error-messages', msgs.join(' | '));
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { mark('failed to load ' + (t.src || t.href).slice(0, 80)); }
    else { mark(e.message || 'script error'); }
  }, true);
  window.addEventListener('unhandledrejection', function (e) { mark('unhandled rejection: ' + e.reason); });
  var ce = console.error;
  console.error = function () {
    mark(Array.prototype.join.call(arguments, ' '));
    return ce.apply(console, arguments);
  };
  window.addEventListener('load', function () { root.setAttribute('data-ready', '1'); });
})();
"""

_SELECTOR_JS = """
(function () {
  var selects = document.querySelectorAll('select.layer-select');
  Array.prototype.forEach.call(selects, function (sel) {
    var group = sel.getAttribute('data-group');
    var items = document.querySelectorAll('[data-layer-group="' + group + '"]');
    function show() {
      Array.prototype.forEach.call(items, function (el) {
        el.hidden = el.getAttribute('data-layer') !== sel.value;
      });
    }
    function step(d) {
      var i = Math.min(sel.options.length - 1, Math.max(0, sel.selectedIndex + d));
      sel.selectedIndex = i; show();
    }
    var box = sel.closest('.selector') || sel.parentNode;
    Array.prototype.forEach.call(box.querySelectorAll('button[data-step]'), function (b) {
      b.hidden = false;
      b.addEventListener('click', function () { step(parseInt(b.getAttribute('data-step'), 10)); });
    });
    box.hidden = false;
    sel.addEventListener('change', show);
    show();
  });
})();
"""

_CSS = """
:root { --fg: #1d232b; --muted: #5b6670; --line: #d8dde3; --bg: #ffffff; --alt: #f5f7f9;
        --bad: #b42318; --bad-bg: #fdecea; --ok: #1f7a3a; --warn-bg: #fff4d6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 8px; border-bottom: 1px solid var(--line); background: var(--alt); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav a { color: #0b5cad; text-decoration: none; }
main { padding: 6px 28px 40px; max-width: 1600px; }
section { margin-top: 26px; }
h2 { font-size: 19px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.note, .note { color: var(--muted); font-size: 13px; }
.banner { margin: 10px 0; padding: 10px 14px; border-radius: 6px; background: var(--warn-bg);
          border: 1px solid #e6c35c; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: var(--alt); position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tr:nth-child(even) td { background: #fbfcfd; }
td.best { font-weight: 700; color: var(--ok); }
td.sig { color: var(--bad); font-weight: 600; }
td.flag { background: var(--bad-bg) !important; color: var(--bad); font-weight: 700; }
td.na { color: var(--muted); }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 12px; }
.selector { margin: 8px 0; display: flex; align-items: center; gap: 8px; }
.selector select { font-size: 14px; padding: 2px 6px; }
pre { background: var(--alt); border: 1px solid var(--line); padding: 10px; overflow-x: auto;
      font-size: 12px; max-height: 420px; }
details summary { cursor: pointer; color: #0b5cad; margin: 6px 0; }
"""


def esc(text: object) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return html.escape(str(text), quote=True)


def table(header: Sequence[str] | None, rows: Iterable[Sequence[object]], *,
          text_cols: int = 1, classes: Iterable[Sequence[str]] | None = None, caption: str = "") -> str:
    """A ``<table>`` (no header row when ``header`` is None); cells are escaped. The first
    ``text_cols`` columns are left-aligned.
    ``classes`` gives one CSS class string per cell (``""`` for none); a cell given as a
    ``(text, title)`` tuple gets a tooltip."""
    out = ['<div class="scroll"><table>']
    if caption:
        out.append(f"<caption class=\"note\">{esc(caption)}</caption>")
    if header is not None:
        out.append("<thead><tr>" + "".join(
            f'<th class="{"text" if i < text_cols else ""}">{esc(h)}</th>' for i, h in enumerate(header)
        ) + "</tr></thead>")
    out.append("<tbody>")
    class_rows = list(classes) if classes is not None else None
    for r, row in enumerate(rows):
        cells = []
        for i, value in enumerate(row):
            cls = ["text"] if i < text_cols else []
            if class_rows is not None and class_rows[r][i]:
                cls.append(class_rows[r][i])
            title = ""
            if isinstance(value, tuple):
                value, tip = value
                title = f' title="{esc(tip)}"'
            cells.append(f'<td class="{" ".join(cls)}"{title}>{esc(value)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure(fig: Figure, caption: str = "", *, attrs: str = "") -> str:
    """An inline ``<figure>`` with the PNG as a data URI."""
    data = base64.b64encode(fig.png).decode("ascii")
    cap = f"<figcaption>{esc(caption)} <span class=\"note\">({esc(fig.path.name)})</span></figcaption>" \
        if caption else ""
    return (f'<figure{attrs}><img src="data:image/png;base64,{data}" alt="{esc(fig.alt)}" '
            f'width="{fig.width}" height="{fig.height}">{cap}</figure>')


def layer_selector(group: str, layers: Sequence[int], labels: dict[int, str] | None = None) -> str:
    """A ``<select>`` (hidden until the script runs) choosing which ``data-layer`` of
    ``data-layer-group=group`` is shown."""
    labels = labels or {}
    opts = "".join(f'<option value="{layer}">{esc(labels.get(layer, f"layer {layer}"))}</option>'
                   for layer in layers)
    return (f'<div class="selector" hidden><label>layer <select class="layer-select" '
            f'data-group="{esc(group)}">{opts}</select></label>'
            f'<button type="button" data-step="-1" hidden>&#9664; previous</button>'
            f'<button type="button" data-step="1" hidden>next &#9654;</button>'
            f'<span class="note">{len(layers)} layers; one shown at a time</span></div>')


def layer_block(group: str, layer: int, inner: str) -> str:
    """A block of figures for one layer, toggled by :func:`layer_selector`."""
    return f'<div data-layer-group="{esc(group)}" data-layer="{layer}">{inner}</div>'


def page(title: str, header_html: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f"<script>{_ERROR_CAPTURE}</script><style>{_CSS}</style></head>\n"
        f"<body><header>{header_html}<nav>{links}</nav></header>\n<main>{body}</main>\n"
        f"<script>{_SELECTOR_JS}</script></body></html>\n"
    )
