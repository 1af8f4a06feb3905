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
      { name: "members", type: "line", data: pick("members") },
      { name: "entries", type: "bar", data: pick("entries") },
      { name: "exits", type: "bar", data: pick("exits") },
    ],
  });
  return true;
}

document.querySelectorAll(".panel-body[data-url]").forEach(async (el) => {
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
  const rows = Array.isArray(data) ? data : Object.values(data).find((v) => Array.isArray(v));
  if (rows && rows.length && typeof rows[0] === "object") el.replaceChildren(table(rows));
  else el.replaceChildren(Object.assign(document.createElement("pre"), { className: "sql", textContent: JSON.stringify(data, null, 2) }));
});
