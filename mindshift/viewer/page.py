"""The trial browser's HTML shell: the stylesheet, the run's data and the script, inlined."""

from __future__ import annotations

import html

from mindshift.viewer.script import SCRIPT
from mindshift.viewer.style import STYLE


def embed_json(document: str) -> str:
    """A JSON document made safe to sit inside a `<script>` element.

    The HTML parser ends a script element at the first `</script`, whatever JavaScript or
    JSON says, and treats `<!--` inside one specially; a prompt may hold either. Every `<`
    (and `>` and `&`, for good measure) is written as its JSON escape, which only strings
    can hold and which decodes to the same text.
    """
    return document.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(*, title: str, subtitle: str, data_json: str) -> str:
    """The whole page: `data_json` is the run's data as JSON (see `mindshift.view`)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
</header>
<nav id="filters" aria-label="filters"></nav>
<main>
<div id="list-pane">
<div id="pager"></div>
<table>
<thead><tr><th>trial</th><th>model</th><th>item</th><th>condition</th><th>repeat</th><th>answers</th><th></th></tr></thead>
<tbody id="trial-list"></tbody>
</table>
</div>
<article id="trial"></article>
</main>
<noscript>This trial browser needs JavaScript; the calls themselves are in calls.jsonl.</noscript>
<script type="application/json" id="trial-data">{embed_json(data_json)}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
