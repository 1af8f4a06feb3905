// Segment page analysis panels: each slot fetches its endpoint (growth, overlap, profile) and draws what
// comes back; a 404 (endpoint or data not there yet) shows "no data yet". Never invented data.

function table(rows) {
  const keys = Object.keys(rows[0] || {});
  const el = document.createElement("table");
  el.className = "grid";
  const head = el.createTHead().insertRow();
  for (const k of keys) { const th = document.createElement("th"); th.textContent = k; head.append(th); }
  const body = el.createTBody();
  for (const r of rows.slice(0, 50)) {
    const tr = body.insertRow();
    for (const k of keys) tr.insertCell().textContent = typeof r[k] === "object" ? JSON.stringify(r[k]) : String(r[k]);
  }
  return el;
}

function growthChart(el, data) {
  // Accepts {days: [...], members: [...], entries: [...], exits: [...]} or a list of per-day rows.
  const rows = Array.isArray(data) ? data : Array.isArray(data.days) && typeof data.days[0] === "object" ? data.days : null;
  const days = rows ? rows.map((r) => r.day || r.date) : data.days;
  const pick = (k) => (rows ? rows.map((r) => r[k] ?? 0) : data[k] || []);
  if (!days || !days.length) return false;
  const box = document.createElement("div");
  box.className = "chart";
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", el.closest(".panel").querySelector("h2").textContent);
  el.replaceChildren(box);
  const chart = echarts.init(box, null, { renderer: "canvas" });
  chart.setOption({
    animation: false, tooltip: { trigger: "axis" }, legend: {},
    grid: { left: 48, right: 16, top: 32, bottom: 28 },
    xAxis: { type: "category", data: days.map((d) => String(d).slice(5, 10)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: L.members || "members", type: "line", data: pick("members") },
      { name: L.entries || "entries", type: "bar", data: pick("entries") },
      { name: L.exits || "exits", type: "bar", data: pick("exits") },
    ],
  });
  return true;
}

const L = JSON.parse(document.getElementById("panel-i18n")?.textContent || "{}");
const pct = (x) => `${(100 * x).toFixed(1)}%`;

function labelledTable(head, rows) {
  // rows: arrays of cell texts, head: column titles
  const el = document.createElement("table");
  el.className = "grid";
  const tr = el.createTHead().insertRow();
  for (const h of head) { const th = document.createElement("th"); th.scope = "col"; th.textContent = h; tr.append(th); }
  const body = el.createTBody();
  for (const r of rows) { const row = body.insertRow(); for (const c of r) row.insertCell().textContent = c; }
  return el;
}

function overlapView(el, data) {
  // OverlapOut: segments[0] is this segment; show how many of its members each other segment shares.
  if (!data.segments || data.segments.length < 2) return false;
  const rows = data.segments.slice(1).map((name, i) => [
    name, data.shared[0][i + 1].toLocaleString(), pct(data.percent[0][i + 1] / 100), data.jaccard[0][i + 1].toFixed(3),
  ]);
  el.replaceChildren(labelledTable([L.segment, L.shared, L.share_of_this, L.jaccard], rows));
  return true;
}

function profileView(el, data) {
  // ProfileOut: a bar per compared trait (divergence 0-1), then the most distinctive value of each flagged trait.
  const traits = (data.traits || []).filter((t) => t.divergence !== null).slice(0, 12);
  if (!traits.length) return false;
  const box = document.createElement("div");
  box.className = "chart";
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", el.closest(".panel").querySelector("h2").textContent);
  const rows = [];
  for (const t of traits.filter((x) => x.flagged)) {
    const top = [...t.values].sort((a, b) => (b.lift ?? 0) - (a.lift ?? 0))[0];
    if (top) rows.push([t.name, t.divergence.toFixed(2), top.value, pct(top.member_share), pct(top.population_share)]);
  }
  el.replaceChildren(box);
  if (rows.length) el.append(labelledTable([L.trait, L.divergence, L.top_value, L.members_share, L.population_share], rows));
  const chart = echarts.init(box, null, { renderer: "canvas" });
  const shown = [...traits].reverse();
  chart.setOption({
    animation: false, tooltip: { trigger: "axis" }, grid: { left: 120, right: 16, top: 8, bottom: 24 },
    xAxis: { type: "value", max: 1 }, yAxis: { type: "category", data: shown.map((t) => t.name) },
    series: [{ name: L.divergence, type: "bar", data: shown.map((t) => ({ value: t.divergence, itemStyle: t.flagged ? { color: "#d9534f" } : {} })) }],
  });
  return true;
}

async function loadPanel(el) {
  if (!el.dataset.url) {
    el.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: el.dataset.empty }));
    el.dataset.state = "empty";
    return;
  }
  let res;
  try {
    res = await fetch(el.dataset.url, { credentials: "same-origin" });
  } catch {
    el.textContent = el.dataset.failed;
    el.dataset.state = "failed";
    return;
  }
  if (res.status === 404) {
    el.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: el.dataset.empty }));
    el.dataset.state = "empty";
    return;
  }
  if (!res.ok) {
    el.textContent = `${el.dataset.failed} (${res.status})`;
    el.dataset.state = "failed";
    return;
  }
  const data = await res.json();
  el.dataset.state = "loaded";
  if (el.dataset.panel === "growth" && growthChart(el, data)) return;
  if (el.dataset.panel === "overlap" && overlapView(el, data)) return;
  if (el.dataset.panel === "profile" && profileView(el, data)) return;
  const rows = Array.isArray(data) ? data : Object.values(data).find((v) => Array.isArray(v));
  if (rows && rows.length && typeof rows[0] === "object") el.replaceChildren(table(rows));
  else el.replaceChildren(Object.assign(document.createElement("pre"), { className: "sql", textContent: JSON.stringify(data, null, 2) }));
}

document.querySelectorAll(".panel-body[data-panel]").forEach(loadPanel);

const backfill = document.getElementById("backfill");
if (backfill) {
  // Fill the last 90 days of history by as-of evaluation, then redraw the growth chart in place.
  const label = backfill.textContent;
  backfill.addEventListener("click", async () => {
    const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    const growth = document.querySelector('.panel-body[data-panel="growth"]');
    backfill.disabled = true;
    backfill.textContent = backfill.dataset.running;
    const res = await fetch(backfill.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ segment: backfill.dataset.segment }),
    });
    backfill.disabled = false;
    if (res.ok) {
      backfill.textContent = label;
      await loadPanel(growth);
      growth.dataset.backfilled = "true";
    } else {
      backfill.textContent = `${res.status}: ${(await res.json().catch(() => ({}))).message || ""}`;
    }
  });
}
