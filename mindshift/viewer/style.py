"""The trial browser's stylesheet, inlined into the page (no file or network is fetched)."""

STYLE = """
:root { --fg: #1d2125; --muted: #5f6b76; --line: #d7dce1; --bg: #fff; --panel: #f6f8fa;
  --accent: #1f5fa8; --bad: #b42318; --good: #1a7f37; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: 12px 20px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); }
#filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; padding: 10px 20px;
  background: var(--panel); border-bottom: 1px solid var(--line); }
#filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
#filters select, #filters input { font: inherit; padding: 3px 6px; min-width: 8em; }
main { display: grid; grid-template-columns: minmax(0, 5fr) minmax(0, 6fr); min-height: 70vh; }
@media (max-width: 1100px) { main { grid-template-columns: minmax(0, 1fr); } }
#list-pane { border-right: 1px solid var(--line); overflow-x: auto; }
#pager { display: flex; gap: 10px; align-items: center; padding: 8px 12px; color: var(--muted); }
#pager button { font: inherit; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--bg); }
#trial-list tr { cursor: pointer; }
#trial-list td { white-space: nowrap; }
#trial-list tr:hover { background: #eef4fb; }
#trial-list tr.open { background: #dbe9f8; }
td.id, code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; }
.tag { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: 11.5px;
  margin-right: 3px; }
.tag.changed { background: #fff1d6; color: var(--warn); }
.tag.failed { background: #fde7e5; color: var(--bad); }
#trial { padding: 12px 20px 40px; overflow: auto; position: sticky; top: 0;
  max-height: 100vh; align-self: start; }
#trial .empty { color: var(--muted); }
#trial h2 { font-size: 16px; margin: 4px 0 8px; }
#trial dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 0 0 12px; }
#trial dt { color: var(--muted); }
#trial dd { margin: 0; }
section.turn { border: 1px solid var(--line); border-radius: 6px; margin: 12px 0;
  padding: 8px 12px; }
section.turn h3 { font-size: 14px; margin: 0 0 6px; }
.message { border-left: 3px solid var(--line); margin: 6px 0; padding: 2px 10px; }
.message.user { border-color: var(--accent); }
.message.assistant { border-color: var(--good); }
.message.system { border-color: var(--muted); }
.message .role { font-size: 11.5px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.message .text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: inherit; }
.answer { font-weight: 600; }
.answer.right { color: var(--good); }
.answer.wrong { color: var(--bad); }
.error { color: var(--bad); white-space: pre-wrap; overflow-wrap: anywhere; }
.bar { display: inline-block; height: 9px; background: var(--accent); vertical-align: middle; }
table.small { width: auto; margin: 4px 0 8px; }
table.small td, table.small th { padding: 1px 10px 1px 0; }
h4 { font-size: 12.5px; margin: 10px 0 2px; color: var(--muted); font-weight: 600; }
ol.replies li { white-space: pre-wrap; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
"""
