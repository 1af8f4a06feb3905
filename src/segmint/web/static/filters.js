// Property filter rows (property picked from the taxonomy and from what has arrived, operator, value with
// suggestions from /ui/segments/values) and the small DOM helpers they need: shared by the segment builder
// and the campaign composer's goal conditions. Filters are the segment model's PropertyFilter JSON.

export const UNITS = ["minutes", "hours", "days", "weeks", "months"];
export const PROP_OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "starts_with",
  "exists", "not_exists"];

export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) el.append(kid);
  return el;
}

export function field(id, label, control, cls = "") {
  control.id = id;
  return h("div", { class: "fld " + cls }, h("label", { for: id, text: label }), control);
}

export function select(options, value, onchange) {
  const el = h("select", { onchange: (e) => onchange(e.target.value) });
  for (const o of options) {
    if (o.group) {
      const g = h("optgroup", { label: o.group });
      for (const x of o.options) g.append(h("option", { value: x.value, text: x.label }));
      el.append(g);
    } else el.append(h("option", { value: o.value, text: o.label, disabled: o.disabled }));
  }
  el.value = value ?? "";
  return el;
}

export function input(value, oninput, attrs = {}) {
  return h("input", { type: "text", value: value ?? "", oninput: (e) => oninput(e.target.value), ...attrs });
}

export function datalist(id, items) {
  const dl = h("datalist", { id });
  for (const it of items) dl.append(h("option", { value: it.value, label: it.label || "" }));
  return dl;
}

export function toInt(v) {
  const n = parseInt(v, 10);
  return Number.isFinite(n) ? n : 0;
}

// events: [{name, properties: [{name, label, type, enum}]}]; t(key): text of "b.<key>"; changed(structural):
// called after every edit (structural: the rows must be drawn again); focus(id): the control to focus after that.
export function makeFilters({ events, t, changed, focus }) {
  const EVENTS = new Map(events.map((e) => [e.name, e]));

  function readOnlyEl(node) {
    const code = h("code", { class: "ro", text: "…" });
    code.dataset.tree = JSON.stringify(node);
    return h("div", { class: "readonly" }, code, h("p", { class: "muted", text: t("readonly") }));
  }

  function durationEls(obj, key, path, optional) {
    const d = obj[key];
    return [
      field(`${path}-amount`, t(optional ? "within" : "amount"), input(d ? d.amount : "", (v) => {
        if (optional && v === "") { obj[key] = null; changed(); return; }
        obj[key] = { amount: toInt(v), unit: (obj[key] && obj[key].unit) || "days" };
        changed();
      }, { type: "number", min: "0", class: "num-in" })),
      field(`${path}-unit`, t("unit"), select(UNITS.map((u) => ({ value: u, label: t("u_" + u) })), d ? d.unit : "days",
        (v) => { obj[key] = { amount: (obj[key] && obj[key].amount) || 1, unit: v }; changed(); })),
    ];
  }

  function filtersEl(owner, path, scope, eventName) {
    owner.where = owner.where || [];
    const box = h("div", { class: "filters" });
    owner.where.forEach((f, i) => box.append(filterEl(owner, i, `${path}-f${i}`, scope, eventName)));
    box.append(h("button", { type: "button", class: "link", id: `${path}-addfilter`, text: t("where"),
      onclick: () => { owner.where.push({ path: [""], op: "eq", value: { kind: "value", value: "" } });
        focus(`${path}-f${owner.where.length - 1}-prop`); changed(true); } }));
    return box;
  }

  function propsOf(eventName) {
    const e = EVENTS.get(eventName);
    return e ? e.properties : [];
  }

  function propType(eventName, name) {
    const p = propsOf(eventName).find((x) => x.name === name);
    return p ? p.type : "";
  }

  function filterEl(owner, i, path, scope, eventName) {
    const f = owner.where[i];
    const props = propsOf(eventName);
    const row = h("div", { class: "row filter" });
    const listId = `${path}-props`;
    row.append(datalist(listId, props.map((p) => ({ value: p.name, label: p.label ? `${p.label} (${p.type})` : p.type }))));
    row.append(field(`${path}-prop`, t("property"), input(f.path.join("."), (v) => {
      f.path = v.split(".").filter((x) => x !== ""); if (!f.path.length) f.path = [""]; changed();
    }, { list: listId, autocomplete: "off" })));
    row.append(field(`${path}-op`, t("op"), select(PROP_OPS.map((o) => ({ value: o, label: t("op_" + o) })), f.op, (v) => {
      setOp(f, v, () => propType(eventName, f.path.join("."))); focus(`${path}-op`); changed(true);
    })));
    row.append(...operandEls(f, path, scope, () => propType(eventName, f.path.join(".")),
      () => ({ event: eventName, property: f.path.join("."),
        enumValues: (propsOf(eventName).find((x) => x.name === f.path.join(".")) || {}).enum || [] })));
    row.append(h("button", { type: "button", class: "secondary small", id: `${path}-remove`, text: t("remove"),
      "aria-label": t("remove") + " " + t("property"),
      onclick: () => { owner.where.splice(i, 1); changed(true); } }));
    return row;
  }

  function setOp(f, op, typeOf) {
    const none = op === "exists" || op === "not_exists";
    const dur = op === "within_last" || op === "older_than";
    const first = f.value && f.value.kind === "value" ? f.value.value : f.value && f.value.kind === "values" ? f.value.values[0] : "";
    f.op = op;
    delete f.duration;
    if (none) { f.value = null; f.value2 = null; return; }
    if (dur) { f.value = null; f.value2 = null; f.duration = { amount: 30, unit: "days" }; return; }
    if (op === "in" || op === "not_in") f.value = { kind: "values", values: [coerce(first ?? "", typeOf())] };
    else if (!f.value || f.value.kind === "values") f.value = { kind: "value", value: coerce(first ?? "", typeOf()) };
    f.value2 = op === "between" ? (f.value2 || { kind: "value", value: coerce("", typeOf()) }) : null;
  }

  function coerce(raw, type, previous) {
    if (type === "integer" || type === "number" || (type === "" && typeof previous === "number")) {
      const n = Number(raw);
      return raw !== "" && Number.isFinite(n) ? n : raw;
    }
    if (type === "boolean" || (type === "" && typeof previous === "boolean")) {
      return raw === "true" ? true : raw === "false" ? false : raw;
    }
    if (type === "datetime") return raw;
    return String(raw);
  }

  function operandEls(f, path, scope, typeOf, valuesFor) {
    // The right-hand side of a property filter or trait test: a literal, a list, or (in scope) an anchor's property.
    const out = [];
    if (f.op === "exists" || f.op === "not_exists") return out;
    if (f.op === "within_last" || f.op === "older_than") return durationEls(f, "duration", path, false);
    const canAnchor = scope.length && f.op !== "in" && f.op !== "not_in";
    const vk = f.value && f.value.kind === "anchor_ref" ? "anchor" : "value";
    if (canAnchor) {
      out.push(field(`${path}-vk`, t("value_kind"), select([{ value: "value", label: t("vk_value") },
        { value: "anchor", label: t("vk_anchor") }], vk, (v) => {
        f.value = v === "anchor" ? { kind: "anchor_ref", anchor: scope[scope.length - 1].name, path: [...(f.path || [f.name])] }
          : { kind: "value", value: "" };
        focus(`${path}-vk`); changed(true);
      })));
    }
    if (vk === "anchor") {
      const ref = f.value;
      out.push(field(`${path}-anchor`, t("anchor"), select(scope.map((s) => ({ value: s.name, label: s.name })), ref.anchor,
        (v) => { ref.anchor = v; changed(true); })));
      const anc = scope.find((s) => s.name === ref.anchor);
      const listId = `${path}-aprops`;
      out.push(datalist(listId, propsOf(anc ? anc.event : "").map((p) => ({ value: p.name, label: p.label }))));
      out.push(field(`${path}-apath`, t("anchor_prop"), input(ref.path.join("."), (v) => {
        ref.path = v.split(".").filter((x) => x !== ""); changed();
      }, { list: listId, autocomplete: "off" })));
      return out;
    }
    if (f.value && !["value", "values", "datetime"].includes(f.value.kind)) {
      out.push(readOnlyEl(f.value));
      return out;
    }
    const listId = `${path}-vals`;
    const dl = datalist(listId, []);
    out.push(dl);
    const loadValues = async () => {
      if (dl.dataset.loaded) return;
      dl.dataset.loaded = "1";
      const q = valuesFor();
      const params = new URLSearchParams(q.trait ? { trait: q.trait } : { event: q.event || "", property: q.property || "" });
      const res = await fetch("/ui/segments/values?" + params, { credentials: "same-origin" });
      if (!res.ok) return;
      const body = await res.json();
      const enums = q.enumValues || [];
      for (const v of enums) dl.append(h("option", { value: v }));
      for (const v of body.values) if (!enums.includes(v.value)) dl.append(h("option", { value: v.value, label: `${v.count}` }));
    };
    if (f.value.kind === "values") {
      out.push(field(`${path}-value`, t("value") + " (" + t("list_hint") + ")", input(f.value.values.join(", "), (v) => {
        const items = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
        f.value.values = items.length ? items.map((x) => coerce(x, typeOf(), f.value.values[0])) : [""];
        changed();
      }, { onfocus: loadValues })));
      return out;
    }
    const valueInput = (key, label) => field(`${path}-${key}`, label, input(
      f[key].kind === "datetime" ? f[key].value : String(f[key].value ?? ""), (v) => {
        if (f[key].kind === "datetime") f[key].value = v;
        else f[key].value = coerce(v, typeOf(), f[key].value);
        changed();
      }, { list: listId, autocomplete: "off", onfocus: loadValues }));
    out.push(valueInput("value", t("value")));
    if (f.op === "between") {
      f.value2 = f.value2 || { kind: "value", value: "" };
      out.push(valueInput("value2", t("value2")));
    }
    return out;
  }

  return { readOnlyEl, durationEls, filtersEl, operandEls, setOp, coerce, propsOf };
}
