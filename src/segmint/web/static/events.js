// Draws each event's daily volume (last 30 days) with ECharts from /ui/events/volume.
document.querySelectorAll(".chart[data-event]").forEach(async (el) => {
  const res = await fetch("/ui/events/volume?event=" + encodeURIComponent(el.dataset.event),
                          { credentials: "same-origin" });
  if (!res.ok) { el.textContent = res.status + " " + res.statusText; return; }
  const data = await res.json();
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    grid: { left: 48, right: 16, top: 16, bottom: 28 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: data.days.map((d) => d.slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: el.dataset.label, type: "bar", data: data.counts, itemStyle: { color: "#2f6fed" } }],
  });
  el.dataset.drawn = "1";
  window.addEventListener("resize", () => chart.resize());
});
