// Campaign report charts: the funnel per variant (and control) and the suppression reasons, from the
// JSON the server put in #report-data (labels already in the page's language).
"use strict";
(() => {
  const node = document.getElementById("report-data");
  if (!node || typeof echarts === "undefined") return;
  const data = JSON.parse(node.textContent);
  const bars = (el, categories, series) => {
    const chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: {},
      grid: { left: 56, right: 16, top: 36, bottom: 32 },
      xAxis: { type: "category", data: categories },
      yAxis: { type: "value", minInterval: 1, name: data.labels.count },
      series: series.map((s) => ({ name: s.name, type: "bar", data: s.data, label: { show: true, position: "top" } })),
    });
    window.addEventListener("resize", () => chart.resize());
    el.dataset.ready = "1";
  };
  // messages still planned or sending (e.g. right after "send now"): reload a few times until they settle
  const pending = document.getElementById("pending-note");
  const key = `segmint.reload.${location.pathname}`;
  const tries = Number(sessionStorage.getItem(key) || 0);
  if (pending && tries < 12) {
    sessionStorage.setItem(key, String(tries + 1));
    setTimeout(() => location.reload(), 3000);
  } else if (!pending) sessionStorage.removeItem(key);
  const funnel = document.getElementById("funnel-chart");
  if (funnel) bars(funnel, data.stages, data.series);
  const supp = document.getElementById("suppression-chart");
  if (supp && data.reasons.length) bars(supp, data.reasons, data.reason_series);
})();
