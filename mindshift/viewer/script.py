# ruff: noqa: E501, RUF001 (the string is JavaScript, laid out as JavaScript, with typographic marks)
"""The trial browser's script, inlined into the page.

It reads the run's data from the page's `<script type="application/json" id="trial-data">`
block (the layout `mindshift.view` writes and documents) and builds every element with
`textContent`, never with `innerHTML`, so no text of a run (a prompt may hold `<script>`) is
ever parsed as markup. Only the rows of one page of the list are in the document at a time,
and a trial's turns are built when it is opened, so a run of 100k calls stays responsive.

The page's state lives in the URL fragment, so a link names a view and a trial:
`#model=M&condition=C&turn=K&changed=yes|no&failed=yes|no&q=TEXT&page=N&per=N&trial=ID`.
`trial` may name any call of a trial (a turn-1 id opens the first trial it starts).
"""

SCRIPT = r"""
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("trial-data").textContent);
  const T = data.texts;
  const calls = data.calls;
  const PER_PAGE = 100;

  function text(index) { return index === undefined || index === null ? "" : T[index]; }
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function fmt(value, digits) {
    if (value === null || value === undefined) return "—";
    return Number(value).toFixed(digits === undefined ? 4 : digits);
  }

  const items = data.items;
  function failedCall(call) { return call.err !== undefined || call.ch === undefined; }

  // Each trial's facts, read once. Its name is its first later turn's id (turn 1's when it
  // has no other), its model, item and condition those of its last call, as
  // harness.transcripts names them.
  const rows = data.trials.map(function (trial, index) {
    const turns = trial.slice(1).map(function (i) { return calls[i]; });
    const last = turns[turns.length - 1];
    const first = turns[0].t === 1 ? turns[0] : null;
    const named = turns.find(function (c) { return c.t > 1; }) || turns[0];
    const item = items[last.i];
    // A later turn changed mind when both it and turn 1 have an answer and they differ.
    const changes = turns.map(function (c) {
      if (c.t === 1 || first === null || failedCall(first) || failedCall(c)) return null;
      return c.ch !== first.ch;
    });
    return {
      index: index, id: named.id, turns: turns, changes: changes,
      changed: (trial[0] & 1) === 1, failed: (trial[0] & 2) === 2,
      model: text(last.m), condition: text(last.c), item: text(item[0]),
      question: text(item[1]).toLowerCase(), repeat: last.r,
      ids: turns.map(function (c) { return c.id; }),
    };
  });
  const byId = new Map();
  rows.forEach(function (row) { byId.set(row.id, row.index); });
  rows.forEach(function (row) {
    row.ids.forEach(function (id) { if (!byId.has(id)) byId.set(id, row.index); });
  });

  function distinct(values) { return Array.from(new Set(values)); }
  const models = distinct(rows.map(function (r) { return r.model; }));
  const conditions = distinct(rows.map(function (r) { return r.condition; }));
  const turnNumbers = distinct(calls.map(function (c) { return c.t; })).sort(function (a, b) {
    return a - b;
  });

  function readState() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const per = parseInt(params.get("per") || "", 10);
    const page = parseInt(params.get("page") || "", 10);
    return {
      model: params.get("model") || "", condition: params.get("condition") || "",
      turn: params.get("turn") || "", changed: params.get("changed") || "",
      failed: params.get("failed") || "", q: params.get("q") || "",
      per: per > 0 ? per : PER_PAGE, page: page > 0 ? page : 0,
      trial: params.get("trial") || "",
    };
  }
  function writeState(state, push) {
    const params = new URLSearchParams();
    for (const key of ["model", "condition", "turn", "changed", "failed", "q", "trial"]) {
      if (state[key]) params.set(key, state[key]);
    }
    if (state.per !== PER_PAGE) params.set("per", String(state.per));
    if (state.page > 1) params.set("page", String(state.page));
    const hash = "#" + params.toString();
    if (push) history.pushState(null, "", hash); else history.replaceState(null, "", hash);
    render();
  }

  function matches(row, state) {
    if (state.model && row.model !== state.model) return false;
    if (state.condition && row.condition !== state.condition) return false;
    let changed = row.changed;
    let failed = row.failed;
    if (state.turn) {
      const at = row.turns.findIndex(function (c) { return c.t === Number(state.turn); });
      if (at < 0) return false;
      changed = row.changes[at] === true;
      failed = failedCall(row.turns[at]);
    }
    if (state.changed && changed !== (state.changed === "yes")) return false;
    if (state.failed && failed !== (state.failed === "yes")) return false;
    if (state.q) {
      const q = state.q.toLowerCase();
      const hit = row.item.toLowerCase().includes(q) || row.question.includes(q) ||
        row.ids.some(function (id) { return id.toLowerCase().includes(q); });
      if (!hit) return false;
    }
    return true;
  }

  function option(value, label, selected) {
    const node = el("option", { value: value, text: label });
    if (value === selected) node.selected = true;
    return node;
  }
  function select(name, label, values, state, names) {
    const control = el("select", { name: name, id: "filter-" + name },
      [option("", "all", state[name])].concat(values.map(function (v, i) {
        return option(String(v), names ? names[i] : String(v), state[name]);
      })));
    control.addEventListener("change", function () {
      const next = readState();
      next[name] = control.value; next.page = 1; writeState(next, false);
    });
    return el("label", null, [label, control]);
  }
  function buildFilters() {
    const state = readState();
    const box = document.getElementById("filters");
    box.replaceChildren(
      select("model", "model", models, state),
      select("condition", "condition", conditions, state),
      select("turn", "turn", turnNumbers, state),
      select("changed", "changed mind", ["yes", "no"], state),
      select("failed", "failed", ["yes", "no"], state));
    const search = el("input", { id: "filter-q", type: "search", value: state.q,
      placeholder: "trial id, item id, question" });
    search.addEventListener("input", function () {
      const next = readState(); next.q = search.value; next.page = 1; writeState(next, false);
    });
    box.append(el("label", null, ["search", search]));
  }

  function answers(row) {
    return row.turns.map(function (c) { return c.ch === undefined ? "✗" : c.ch; }).join(" → ");
  }
  function listRow(row, open) {
    const tags = [];
    if (row.changed) tags.push(el("span", { class: "tag changed", text: "changed" }));
    if (row.failed) tags.push(el("span", { class: "tag failed", text: "failed" }));
    const tr = el("tr", { "data-trial": row.id, class: open ? "open" : null }, [
      el("td", { class: "id", text: row.id }),
      el("td", { text: row.model }),
      el("td", { text: row.item }),
      el("td", { text: row.condition }),
      el("td", { text: String(row.repeat) }),
      el("td", { class: "mono", text: answers(row) }),
      el("td", null, tags),
    ]);
    tr.addEventListener("click", function () {
      const next = readState(); next.trial = row.id; writeState(next, true);
    });
    return tr;
  }
  function renderList(state, selected) {
    const shown = rows.filter(function (row) { return matches(row, state); });
    const pages = Math.max(1, Math.ceil(shown.length / state.per));
    let page = state.page;
    if (!page) {
      const at = selected === null ? -1 : shown.indexOf(rows[selected]);
      page = at < 0 ? 1 : Math.floor(at / state.per) + 1;
    }
    page = Math.min(Math.max(page, 1), pages);
    const start = (page - 1) * state.per;
    const body = document.getElementById("trial-list");
    body.replaceChildren.apply(body, shown.slice(start, start + state.per).map(function (row) {
      return listRow(row, row.index === selected);
    }));
    const pager = document.getElementById("pager");
    const previous = el("button", { type: "button", id: "page-previous", text: "‹ previous" });
    const next = el("button", { type: "button", id: "page-next", text: "next ›" });
    previous.disabled = page <= 1; next.disabled = page >= pages;
    previous.addEventListener("click", function () {
      const s = readState(); s.page = page - 1; writeState(s, false);
    });
    next.addEventListener("click", function () {
      const s = readState(); s.page = page + 1; writeState(s, false);
    });
    pager.replaceChildren(previous,
      el("span", { id: "page-status",
        text: shown.length.toLocaleString("en") + " of " + rows.length.toLocaleString("en") +
          " trials · page " + page + " of " + pages }),
      next);
  }

  function messageBlock(role, body, note) {
    return el("div", { class: "message " + role }, [
      el("div", { class: "role", text: note ? role + " · " + note : role }),
      el("pre", { class: "text", text: body })]);
  }
  function probabilities(call) {
    const item = items[call.i];
    const labels = call.lab || item[3];
    const table = el("table", { class: "small probs" }, [el("tr", null, [
      el("th", { text: "option" }), el("th", { text: "text" }), el("th", { text: "probability" }),
      el("th", { text: "" }), el("th", { text: "raw mass" })])]);
    labels.forEach(function (label, i) {
      const p = call.p ? call.p[i] : null;
      const mass = call.mass ? call.mass[i] : p;
      const bound = call.ub && call.ub[label] !== undefined ? " (≤ " + fmt(call.ub[label]) + ")" : "";
      const marks = (label === item[2] ? " ✓ correct" : "") + (label === call.ch ? " · chosen" : "");
      table.append(el("tr", null, [
        el("td", { class: "mono", text: label + marks }),
        el("td", { text: text(item[4][i]) }),
        el("td", { class: "mono", text: fmt(p) }),
        el("td", null, [el("span", { class: "bar", style: "width:" + Math.round((p || 0) * 120) + "px" })]),
        el("td", { class: "mono", text: mass === null || mass === undefined ? "censored" + bound : fmt(mass) }),
      ]));
    });
    const notes = [];
    if (call.cen) notes.push("censored: a label was missing from the returned tokens, so no probabilities are given");
    if (call.out !== undefined && call.out !== null) notes.push("mass outside the options: " + fmt(call.out));
    return [el("h4", { text: "option probabilities" }), table].concat(
      notes.map(function (n) { return el("div", { class: "muted", text: n }); }));
  }
  function topLogprobs(call) {
    if (!call.top || !call.top.length) return [];
    const table = el("table", { class: "small top" }, [el("tr", null, [
      el("th", { text: "token" }), el("th", { text: "log-probability" }), el("th", { text: "probability" })])]);
    call.top.forEach(function (pair) {
      table.append(el("tr", null, [
        el("td", { class: "mono", text: JSON.stringify(text(pair[0])) }),
        el("td", { class: "mono", text: fmt(pair[1]) }),
        el("td", { class: "mono", text: fmt(Math.exp(pair[1])) }),
      ]));
    });
    return [el("h4", { text: "top-" + call.top.length + " log-probabilities at the answer" }), table];
  }
  function readoutDetail(call) {
    const out = [el("h4", { text: "readout" }),
      el("div", { text: "method: " + (call.rm !== undefined ? text(call.rm) : "logprobs (recorded before methods were stored)") })];
    const d = call.rd;
    if (!d) return out;
    if (d.s && d.s.length) {
      const counts = new Map();
      d.s.forEach(function (s) { const k = s === null ? "unreadable" : s; counts.set(k, (counts.get(k) || 0) + 1); });
      out.push(el("div", { text: "samples (" + d.s.length + "): " + Array.from(counts.entries())
        .map(function (e) { return e[0] + " × " + e[1]; }).join(", ") }));
      out.push(el("div", { class: "mono muted", text: d.s.map(function (s) { return s === null ? "?" : s; }).join(" ") }));
    }
    if (d.st !== undefined && d.st !== null) out.push(el("div", { text: "stated confidence: " + fmt(d.st) }));
    if (d.iv) out.push(el("div", { text: "99 % interval: " + fmt(d.iv[0]) + " – " + fmt(d.iv[1]) }));
    if (d.rule) out.push(el("div", { text: "other options: " + d.rule }));
    if (d.rp && d.rp.length) {
      out.push(el("h4", { text: "replies (" + d.rp.length + ")" }));
      out.push(el("ol", { class: "replies" }, d.rp.map(function (r) { return el("li", { text: text(r) }); })));
    }
    return out;
  }
  function turnSection(row, call, changed) {
    const section = el("section", { class: "turn", "data-call": call.id, "data-turn": call.t }, [
      el("h3", { text: "Turn " + call.t + " · " + text(call.c) + " · call " + call.id })]);
    (call.msg || []).forEach(function (m) {
      section.append(messageBlock(text(m[0]), m[1].map(text).join("\n")));
    });
    if (call.pre !== undefined) {
      section.append(messageBlock("assistant", text(call.pre) + " …", "answer prefix"));
    }
    const right = call.ch !== undefined && call.ch === items[call.i][2];
    const answer = call.ch === undefined ? "no answer" : call.ch;
    const change = changed === true ? " (changed from turn 1)" : changed === false ? " (same as turn 1)" : "";
    section.append(el("div", null, ["answer: ",
      el("span", { class: "answer " + (call.ch === undefined ? "wrong" : right ? "right" : "wrong"), text: answer }),
      change]));
    if (call.err !== undefined) section.append(el("div", { class: "error", text: "error: " + text(call.err) }));
    section.append.apply(section, probabilities(call));
    section.append.apply(section, topLogprobs(call));
    section.append.apply(section, readoutDetail(call));
    const u = call.u || [0, 0, 0, 0];
    section.append(el("h4", { text: "call" }), el("div", { class: "muted",
      text: "usage: input " + u[0] + " · output " + u[1] + " · reasoning " + u[2] + " · cached " + u[3] +
        " · latency " + fmt(call.lat, 3) + " s · attempts " + (call.att || 0) +
        (call.T !== undefined ? " · temperature " + call.T : "") + (call.b ? " · batch " + call.b : "") }));
    if (call.ae && call.ae.length) {
      section.append(el("h4", { text: "earlier attempts' errors" }),
        el("ol", null, call.ae.map(function (e) { return el("li", { class: "error", text: text(e) }); })));
    }
    return section;
  }
  function renderTrial(selected) {
    const pane = document.getElementById("trial");
    if (selected === null) {
      const wanted = readState().trial;
      pane.replaceChildren(el("p", { class: "empty", text: wanted
        ? "No trial has the id " + wanted + "." : "Choose a trial in the list to see its turns." }));
      return;
    }
    const row = rows[selected];
    pane.replaceChildren(
      el("h2", { text: "Trial " + row.id }),
      el("dl", { class: "facts" }, [
        el("dt", { text: "model" }), el("dd", { text: row.model }),
        el("dt", { text: "item" }), el("dd", { text: row.item }),
        el("dt", { text: "condition" }), el("dd", { text: row.condition }),
        el("dt", { text: "repeat" }), el("dd", { text: String(row.repeat) }),
        el("dt", { text: "answers" }), el("dd", { class: "mono", text: answers(row) }),
        el("dt", { text: "changed mind" }), el("dd", { text: row.changed ? "yes" : "no" }),
        el("dt", { text: "failed" }), el("dd", { text: row.failed ? "yes" : "no" }),
      ]));
    row.turns.forEach(function (call, at) { pane.append(turnSection(row, call, row.changes[at])); });
  }

  function render() {
    const state = readState();
    const selected = state.trial && byId.has(state.trial) ? byId.get(state.trial) : null;
    renderList(state, selected);
    renderTrial(selected);
    document.body.setAttribute("data-ready", "1");
  }

  buildFilters();
  window.addEventListener("popstate", function () { buildFilters(); render(); });
  window.addEventListener("hashchange", function () { buildFilters(); render(); });
  render();
})();
"""
