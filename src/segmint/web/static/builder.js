// Segment builder: a tree editor over the segment JSON model (docs/segment.schema.json), kept in sync
// with the segment text (parse API) and previewed live (preview API). Vanilla JS module, no build step.

import { PROP_OPS, UNITS, datalist, field, h, input, makeFilters, select, toInt } from "./filters.js";

const DATA = JSON.parse(document.getElementById("builder-data").textContent);
const I18N = DATA.i18n;
const CSRF = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
const EVENTS = new Map(DATA.events.map((e) => [e.name, e]));
const TRAITS = new Map(DATA.traits.map((t) => [t.name, t]));
const TRAIT_OPS = [...PROP_OPS, "within_last", "older_than"];
const EDITABLE = new Set(["and", "or", "not", "performed", "trait", "last", "first", "with", "in_segment"]);

const $ = (id) => document.getElementById(id);
const treeEl = $("tree");
const textEl = $("seg-text");
let root = { kind: "and", items: [] };
let seq = 0; // bumps on every edit: late answers for older states are dropped
let previewTimer = null;
let parseTimer = null;
let pendingFocus = null;

const F = makeFilters({ events: DATA.events, t, changed: (structural) => changed(structural),
  focus: (id) => { pendingFocus = id; } });
const { readOnlyEl, durationEls, filtersEl, operandEls, setOp } = F;

function t(key, vars = {}) {
  let s = I18N["b." + key] ?? key;
  for (const [k, v] of Object.entries(vars)) s = s.replace("{" + k + "}", v);
  return s;
}

// ------------------------------------------------------------------ small DOM helpers


function eventLabel(name) {
  const e = EVENTS.get(name);
  const shown = e && e.label ? `${e.label} (${name})` : name;
  return e ? `${shown} · ${Number(e.count).toLocaleString()}` : shown;
}

function eventOptions(current) {
  const opts = [{ value: "", label: t("choose"), disabled: true }];
  for (const e of DATA.events) opts.push({ value: e.name, label: eventLabel(e.name) });
  if (current && !EVENTS.has(current)) opts.push({ value: current, label: current });
  return opts;
}

// ------------------------------------------------------------------ model edits

function changed(structural = false) {
  seq += 1;
  if (structural) render();
  schedulePreview(true);
}

function newLeaf(type) {
  switch (type) {
    case "trait": return { kind: "trait", name: "", source: "trait", op: "eq", value: { kind: "value", value: "" } };
    case "last": return { kind: "last", event: "", where: [], window: { kind: "ago", duration: { amount: 30, unit: "days" } } };
    case "first": return { kind: "first", event: "", where: [], window: { kind: "last", duration: { amount: 30, unit: "days" } } };
    case "with": return { kind: "with", anchor: { name: "a", pick: "any", event: "", where: [], window: { kind: "ever" } },
      condition: { kind: "and", items: [] } };
    case "in_segment": return { kind: "in_segment", segment: DATA.segments[0] || "" };
    default: return { kind: "performed", event: "", where: [], count: { op: "gte", n: 1 }, window: { kind: "ever" } };
  }
}

function leafType(node) {
  return node.kind;
}

// ------------------------------------------------------------------ rendering

function render() {
  const active = document.activeElement && treeEl.contains(document.activeElement) ? document.activeElement.id : null;
  treeEl.replaceChildren(groupEl(root, "r", [], null));
  fillReadOnly();
  const target = pendingFocus || active;
  pendingFocus = null;
  if (target && $(target)) $(target).focus();
}

function groupEl(node, path, scope, remove) {
  // node: and | or (the root and `with` bodies are always groups)
  const box = h("fieldset", { class: "group " + node.kind, "data-path": path });
  const head = h("div", { class: "g-head" },
    field(`${path}-op`, t("group_op"), select([{ value: "and", label: t("and") }, { value: "or", label: t("or") }],
      node.kind, (v) => { node.kind = v; changed(true); })));
  if (remove) head.append(h("button", { type: "button", class: "secondary small", id: `${path}-remove`, onclick: remove,
    "aria-label": t("remove") + " " + t("group_op"), text: t("remove") }));
  box.append(h("legend", { class: "sr", text: t(node.kind) }), head);
  const list = h("ol", { class: "items" });
  node.items.forEach((child, i) => {
    const rm = () => { node.items.splice(i, 1); pendingFocus = `${path}-add`; changed(true); };
    list.append(h("li", {}, childEl(node, i, `${path}.${i}`, scope, rm)));
  });
  if (!node.items.length) list.append(h("li", { class: "muted empty-group", text: t("empty") }));
  box.append(list);
  box.append(h("div", { class: "g-add" },
    h("button", { type: "button", class: "secondary small", id: `${path}-add`, text: t("add_condition"),
      onclick: () => { node.items.push(newLeaf("performed")); pendingFocus = `${path}.${node.items.length - 1}-type`;
        changed(true); } }),
    h("button", { type: "button", class: "secondary small", id: `${path}-addgroup`, text: t("add_group"),
      onclick: () => { node.items.push({ kind: node.kind === "and" ? "or" : "and", items: [] });
        pendingFocus = `${path}.${node.items.length - 1}-add`; changed(true); } })));
  return box;
}

function childEl(parent, i, path, scope, remove) {
  // One item of a group; `not` is shown as a checkbox on the item it wraps.
  let node = parent.items[i];
  const negated = node.kind === "not";
  const inner = negated ? node.item : node;
  const setInner = (v) => { if (negated) node.item = v; else parent.items[i] = v; };
  const wrap = h("div", { class: "cond" + (negated ? " negated" : "") });
  const not = h("input", { type: "checkbox", id: `${path}-not`, checked: negated,
    onchange: (e) => { parent.items[i] = e.target.checked ? { kind: "not", item: inner } : inner; changed(true); } });
  const notFld = h("div", { class: "fld not" }, not, h("label", { for: `${path}-not`, text: t("not") }));
  if (inner.kind === "and" || inner.kind === "or") {
    const g = groupEl(inner, path, scope, remove);
    g.querySelector(".g-head").prepend(notFld);
    wrap.append(g);
    return wrap;
  }
  const head = h("div", { class: "c-head" }, notFld);
  if (EDITABLE.has(inner.kind)) {
    head.append(field(`${path}-type`, t("cond_type"), select(
      ["performed", "trait", "last", "first", "with", "in_segment"].map((k) => ({ value: k, label: t("type_" + k) })),
      leafType(inner), (v) => { setInner(newLeaf(v)); pendingFocus = `${path}-type`; changed(true); })));
  }
  head.append(h("button", { type: "button", class: "secondary small", id: `${path}-remove`, onclick: remove,
    "aria-label": t("remove"), text: t("remove") }));
  wrap.append(head, leafEl(inner, setInner, path, scope));
  return wrap;
}

const FORM_OPERANDS = new Set(["value", "values", "datetime", "anchor_ref"]);

function hasFormOperands(filters) {
  // Operands the forms edit; others (trait refs, aggregates as values, factors) keep the node in the text.
  return (filters || []).every((f) => [f.value, f.value2].every((v) => !v || (FORM_OPERANDS.has(v.kind) && v.factor == null)));
}

function leafEl(node, replace, path, scope) {
  const filters = node.kind === "with" ? node.anchor.where : node.kind === "trait" ? [node] : node.where;
  if (!hasFormOperands(filters)) return readOnlyEl(node);
  switch (node.kind) {
    case "performed": return performedEl(node, path, scope);
    case "trait": return traitEl(node, replace, path, scope);
    case "last": case "first": return recencyEl(node, path, scope);
    case "with": return withEl(node, path, scope);
    case "in_segment": return field(`${path}-segment`, t("segment"), select(
      DATA.segments.map((s) => ({ value: s, label: s })), node.segment, (v) => { node.segment = v; changed(); }));
    default: return readOnlyEl(node);
  }
}


async function fillReadOnly() {
  const els = [...treeEl.querySelectorAll("code.ro")];
  if (!els.length) return;
  const res = await api("/ui/segments/print", { definitions: els.map((e) => JSON.parse(e.dataset.tree)) });
  if (res.ok) res.body.texts.forEach((txt, i) => { els[i].textContent = txt; });
}

function eventField(node, path, key = "event") {
  return field(`${path}-event`, t("event"), select(eventOptions(node[key]), node[key], (v) => {
    node[key] = v; pendingFocus = `${path}-event`; changed(true);
  }), "wide");
}

const FREQS = ["did", "not", "lte", "eq", "between"];

function freqOf(count) {
  if (count.op === "eq" && count.n === 0) return "not";
  return count.op === "gte" ? "did" : count.op;
}

function performedEl(node, path, scope) {
  node.count = node.count || { op: "gte", n: 1 };
  const row = h("div", { class: "row" }, eventField(node, path));
  const freq = freqOf(node.count);
  row.append(field(`${path}-freq`, t("freq"), select(FREQS.map((f) => ({ value: f, label: t("freq_" + f) })), freq,
    (v) => {
      if (v === "not") node.count = { op: "eq", n: 0 };
      else if (v === "between") node.count = { op: "between", n: Math.max(1, node.count.n), n2: Math.max(2, node.count.n) };
      else node.count = { op: v === "did" ? "gte" : v, n: Math.max(1, node.count.n || 1) };
      pendingFocus = `${path}-freq`; changed(true);
    })));
  if (freq !== "not") {
    row.append(field(`${path}-n`, t("n"), input(node.count.n, (v) => { node.count.n = toInt(v); changed(); },
      { type: "number", min: "0", class: "num-in" })));
    if (freq === "between") {
      row.append(field(`${path}-n2`, t("n2"), input(node.count.n2, (v) => { node.count.n2 = toInt(v); changed(); },
        { type: "number", min: "0", class: "num-in" })));
    }
  }
  row.append(windowEl(node, "window", path, scope, true));
  return h("div", { class: "leaf performed" }, row, filtersEl(node, path, scope, node.event));
}

function recencyEl(node, path, scope) {
  const row = h("div", { class: "row" }, eventField(node, path), windowEl(node, "window", path, scope, false));
  return h("div", { class: "leaf recency" }, row, filtersEl(node, path, scope, node.event));
}

function withEl(node, path, scope) {
  const a = node.anchor;
  const row = h("div", { class: "row" },
    field(`${path}-pick`, t("pick"), select(["first", "last", "any"].map((p) => ({ value: p, label: t("pick_" + p) })),
      a.pick, (v) => { a.pick = v; changed(); })),
    eventField(a, path),
    field(`${path}-as`, t("anchor_name"), input(a.name, (v) => {
      const old = a.name;
      a.name = v.trim();
      renameAnchor(node.condition, old, a.name);
      changed();
    }, { class: "short", pattern: "[A-Za-z_][A-Za-z0-9_]*", onchange: () => { pendingFocus = `${path}-as`; render(); } })),
    windowEl(a, "window", path, scope, false));
  if (node.condition.kind !== "and" && node.condition.kind !== "or") {
    node.condition = { kind: "and", items: [node.condition] };
  }
  const inner = [...scope, { name: a.name, event: a.event }];
  return h("div", { class: "leaf with" }, row, filtersEl(a, path, scope, a.event),
    h("p", { class: "anchor-then", text: t("anchor_then", { name: a.name }) }),
    groupEl(node.condition, `${path}.c`, inner, null));
}

function renameAnchor(obj, from, to) {
  // References to a renamed anchor (property refs and after/before windows) follow the new name.
  if (!obj || typeof obj !== "object" || from === to) return;
  if (Array.isArray(obj)) { obj.forEach((x) => renameAnchor(x, from, to)); return; }
  if ((obj.kind === "anchor_ref" || obj.kind === "after" || obj.kind === "before") && obj.anchor === from) obj.anchor = to;
  for (const v of Object.values(obj)) renameAnchor(v, from, to);
}

// ------------------------------------------------------------------ windows


function windowEl(owner, key, path, scope, performed) {
  const w = owner[key] || { kind: "ever" };
  owner[key] = w;
  const kinds = ["ever", "last", "ago", "between"];
  if (scope.length) kinds.push("after", "before");
  if (!kinds.includes(w.kind)) kinds.push(w.kind);
  const p = `${path}-win`;
  const box = h("div", { class: "window" }, field(p, t("window"), select(
    kinds.map((k) => ({ value: k, label: t("win_" + k) })), w.kind, (v) => {
      owner[key] = defaultWindow(v, scope); pendingFocus = p; changed(true);
    })));
  if (w.kind === "last" || w.kind === "ago") box.append(...durationEls(w, "duration", p, false));
  if (w.kind === "between") {
    for (const side of ["start", "end"]) {
      box.append(field(`${p}-${side}`, t(side), input((w[side] || "").slice(0, 16), (v) => {
        w[side] = v ? (v.length === 16 ? v + ":00" : v) : null; changed();
      }, { type: "datetime-local" })));
    }
  }
  if (w.kind === "after" || w.kind === "before") {
    box.append(field(`${p}-anchor`, t("anchor"), select(scope.map((s) => ({ value: s.name, label: s.name })), w.anchor,
      (v) => { w.anchor = v; changed(); })));
    box.append(...durationEls(w, "within", p, true));
  }
  if (w.kind === "each") {
    box.append(field(`${p}-periods`, t("amount"), input(w.periods, (v) => { w.periods = toInt(v); changed(); },
      { type: "number", min: "1", class: "num-in" })));
  }
  if (w.kind === "calendar") box.append(h("span", { class: "muted", text: `${w.unit} (${w.zone})` }));
  if (!performed && w.kind === "ever") box.append(h("span", { class: "muted", text: "" }));
  return box;
}

function defaultWindow(kind, scope) {
  switch (kind) {
    case "last": return { kind, duration: { amount: 30, unit: "days" } };
    case "ago": return { kind, duration: { amount: 3, unit: "days" } };
    case "between": return { kind, start: null, end: null };
    case "after": case "before": return { kind, anchor: scope.length ? scope[scope.length - 1].name : "", within: null };
    default: return { kind: "ever" };
  }
}

// ------------------------------------------------------------------ property filters and values


function traitEl(node, replace, path, scope) {
  const groups = ["declared", "computed", "profile"].map((g) => ({
    group: t("trait_" + g),
    options: DATA.traits.filter((x) => x.group === g).map((x) => ({ value: `${x.source}:${x.name}`,
      label: x.label ? `${x.label} (${x.name})` : x.name })),
  })).filter((g) => g.options.length);
  const cur = `${node.source || "trait"}:${node.name}`;
  const opts = [{ value: ":", label: t("choose"), disabled: true }, ...groups];
  if (node.name && !TRAITS.has(node.name)) opts.push({ value: cur, label: node.name });
  const row = h("div", { class: "row" });
  row.append(field(`${path}-trait`, t("trait"), select(opts, node.name ? cur : ":", (v) => {
    const [source, ...rest] = v.split(":");
    node.source = source; node.name = rest.join(":"); pendingFocus = `${path}-trait`; changed(true);
  }), "wide"));
  const typeOf = () => (TRAITS.get(node.name) || {}).type || "";
  row.append(field(`${path}-op`, t("op"), select(TRAIT_OPS.map((o) => ({ value: o, label: t("op_" + o) })), node.op,
    (v) => { setOp(node, v, typeOf); pendingFocus = `${path}-op`; changed(true); })));
  row.append(...operandEls(node, path, scope, typeOf, () => ({ trait: node.source === "trait" ? node.name : "",
    enumValues: (TRAITS.get(node.name) || {}).enum || [] })));
  return h("div", { class: "leaf trait" }, row);
}


// ------------------------------------------------------------------ tree <-> model

class Incomplete extends Error {}

function normalize(node) {
  // The model form of the edited tree: groups of one collapse, empty groups are an error.
  switch (node.kind) {
    case "and": case "or": {
      const items = node.items.map(normalize);
      if (!items.length) throw new Incomplete(t("empty"));
      return items.length === 1 ? items[0] : { kind: node.kind, items };
    }
    case "not": return { kind: "not", item: normalize(node.item) };
    case "with": return { ...node, condition: normalize(node.condition) };
    case "performed": case "last": case "first":
      if (!node.event) throw new Incomplete(t("need_event"));
      return node;
    case "trait":
      if (!node.name) throw new Incomplete(t("need_trait"));
      return node;
    default: return node;
  }
}

function asGroup(tree) {
  return tree.kind === "and" || tree.kind === "or" ? tree : { kind: "and", items: [tree] };
}

// ------------------------------------------------------------------ server calls

async function api(url, body, method = "POST") {
  const res = await fetch(url, { method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF }, body: JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { ok: res.ok, status: res.status, body: data };
}

function asOf() {
  const v = $("seg-asof").value;
  return v ? (v.length === 16 ? v + ":00" : v) : null;
}

function schedulePreview(updateText) {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => preview(updateText), 300);
}

async function preview(updateText) {
  const mine = seq;
  let definition;
  try {
    definition = normalize(root);
  } catch (e) {
    if (!(e instanceof Incomplete)) throw e;
    showPreviewError(e.message);
    $("preview-count").textContent = "-";
    return;
  }
  $("builder").dataset.state = "loading";
  if (updateText) printText(definition, mine);
  const body = { definition, sample: 20 };
  if (asOf()) body.as_of = asOf();
  const res = await api("/api/segments/preview", body);
  if (mine !== seq) return;
  $("builder").dataset.state = "idle";
  if (!res.ok) {
    showPreviewError(errorText(res));
    $("preview-count").textContent = "-";
    return;
  }
  showPreviewError("");
  const p = res.body;
  $("preview-count").textContent = Number(p.count).toLocaleString();
  $("preview-count").dataset.count = p.count;
  $("preview-time").textContent = t("ms", { ms: p.elapsed_ms });
  $("preview-sql").textContent = p.sql;
  $("preview-sample").replaceChildren(...p.sample.map((u) =>
    h("li", {}, h("a", { href: "/users/" + encodeURIComponent(u), text: u }))));
  $("builder").dataset.synced = String(mine);
}

async function printText(definition, mine) {
  // tree -> text: the print endpoint lays the text out one condition per line
  const res = await api("/ui/segments/print", { definitions: [definition] });
  if (mine !== seq || !res.ok) return;
  textEl.value = res.body.texts[0];
  showTextError(null);
}

function errorText(res) {
  const b = res.body || {};
  return b.message ? (b.where ? `${b.where}: ${b.message}` : b.message) : `${res.status}`;
}

function showPreviewError(msg) {
  const el = $("preview-error");
  el.textContent = msg;
  el.hidden = !msg;
}

function showTextError(err) {
  const el = $("text-error");
  el.replaceChildren();
  el.hidden = !err;
  textEl.setAttribute("aria-invalid", err ? "true" : "false");
  if (!err) return;
  const where = err.line ? t("line_col", { line: err.line, col: err.column }) : (err.where || "");
  el.append(h("strong", { id: "text-error-where", text: where }), " ", h("span", { id: "text-error-message", text: err.message }));
  if (err.display) el.append(h("pre", { class: "caret", text: err.display }));
  if (err.suggestion) {
    el.append(h("span", { text: t("suggestion") + ": " }), h("code", { id: "text-suggestion", text: err.suggestion }), " ",
      h("button", { type: "button", class: "secondary small", id: "apply-suggestion", text: t("apply_suggestion"),
        onclick: () => applySuggestion(err) }));
  }
}

function applySuggestion(err) {
  const lines = textEl.value.split("\n");
  const width = ((err.display || "").match(/\^+/) || [""])[0].length;
  const line = lines[err.line - 1];
  if (line === undefined || !width) return;
  lines[err.line - 1] = line.slice(0, err.column - 1) + err.suggestion + line.slice(err.column - 1 + width);
  textEl.value = lines.join("\n");
  textEl.focus();
  parseText();
}

async function parseText() {
  seq += 1;
  const mine = seq;
  const text = textEl.value;
  if (!text.trim()) {
    root = { kind: "and", items: [] };
    render();
    showTextError(null);
    return;
  }
  const res = await api("/api/segments/parse", { text });
  if (mine !== seq) return;
  if (!res.ok) {
    showTextError(res.body || { message: String(res.status) });
    return;
  }
  showTextError(null);
  root = asGroup(res.body.definition);
  render();
  preview(false);
}

// ------------------------------------------------------------------ save

async function save() {
  const status = $("save-status");
  const name = $("seg-name").value.trim();
  if (!name) { status.textContent = t("need_name"); $("seg-name").focus(); return; }
  let definition;
  try { definition = normalize(root); } catch (e) { status.textContent = e.message; return; }
  const body = { description: $("seg-description").value, kind: $("seg-kind").value, definition,
    labels: $("seg-labels").value.split(",").map((x) => x.trim()).filter((x) => x) };
  status.textContent = t("saving");
  const editing = Boolean(DATA.segment);
  const res = editing ? await api("/api/segments/" + encodeURIComponent(name), body, "PUT")
    : await api("/api/segments", { name, ...body });
  if (!res.ok) {
    status.replaceChildren(h("span", { class: "bad", id: "save-error", text: errorText(res) }));
    return;
  }
  const url = "/segments/" + encodeURIComponent(name);
  status.replaceChildren(h("span", { id: "saved", text: t("saved", { v: res.body.version }) }), " ",
    h("a", { href: url, id: "open-segment", text: t("open") }));
  if (!editing) {
    DATA.segment = res.body;
    $("seg-name").readOnly = true;
  }
}

// ------------------------------------------------------------------ start

textEl.addEventListener("input", () => {
  seq += 1;
  clearTimeout(parseTimer);
  parseTimer = setTimeout(parseText, 450);
});
$("seg-asof").addEventListener("change", () => { seq += 1; schedulePreview(false); });
if ($("save-segment")) $("save-segment").addEventListener("click", save);

if (DATA.segment) {
  root = asGroup(DATA.segment.definition);
  render();
  preview(false);
} else {
  render();
  showPreviewError(t("empty"));
}
$("builder").dataset.ready = "1";
