// The three time-series charts (uPlot). Each is rebuilt when its set of series changes
// (a new model version, a new action) and only fed new data otherwise. The chart
// objects are on window.cbserveCharts, so their data can be read from the console.
import uPlot from "./uPlot.esm.js";

const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#6e7781"];
const HEIGHT = 220;
const charts = {};
window.cbserveCharts = charts;

const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");  // axes in UTC, as the tables
const color = (i) => COLORS[i % COLORS.length];
const fade = (hex) => `${hex}33`;

function draw(name, series, data, opts = {}) {
  const target = document.getElementById(`chart-${name}`);
  const signature = series.map((s) => s.label).join("\u0000");
  const chart = charts[name];
  if (chart && chart.signature === signature) {
    chart.setData(data);
    return;
  }
  chart?.destroy();
  const width = Math.max(320, target.clientWidth || 800);
  charts[name] = new uPlot({ width, height: HEIGHT, tzDate: utc, series: [{}, ...series], ...opts }, data, target);
  charts[name].signature = signature;
  // a band's bounds have no legend entry of their own
  const rows = charts[name].root.querySelectorAll(".u-legend .u-series");
  series.forEach((s, i) => { if (s.bound) rows[i + 1].style.display = "none"; });
}

// Mean reward per minute of each model version, its 95 % interval as a band.
export function reward(series) {
  const versions = Object.entries(series.by_version ?? {});
  if (!versions.length) versions.push(["all", { mean_reward: series.mean_reward, low: series.low, high: series.high }]);
  const lines = [], data = [series.minute], bands = [];
  versions.forEach(([v, s], i) => {
    const label = v === "all" ? "mean reward" : `v${v}`;
    const first = lines.length + 1;  // uPlot's series index (0 is the x axis)
    lines.push({ label, stroke: color(i), width: 2, spanGaps: false },
               { label: `${label} low`, stroke: fade(color(i)), width: 1, bound: true },
               { label: `${label} high`, stroke: fade(color(i)), width: 1, bound: true });
    data.push(s.mean_reward, s.low, s.high);
    bands.push({ series: [first + 2, first + 1], fill: fade(color(i)) });
  });
  draw("reward", lines, data, { bands });
}

export function rates(series) {
  draw("rates", [
    { label: "join rate", stroke: color(0), width: 2, scale: "share" },
    { label: "exploration share", stroke: color(2), width: 2, scale: "share" },
  ], [series.minute, series.join_rate, series.exploration_share],
  { scales: { share: { range: [0, 1] } }, axes: [{}, { scale: "share" }] });
}

export function actions(series) {
  const ids = Object.keys(series.by_action ?? {}).sort();
  draw("actions", ids.map((id, i) => ({ label: id, stroke: color(i), width: 2, scale: "share" })),
    [series.minute, ...ids.map((id) => series.by_action[id].share)],
    { scales: { share: { range: [0, 1] } }, axes: [{}, { scale: "share" }] });
}

export function resize() {
  for (const chart of Object.values(charts)) {
    chart.setSize({ width: Math.max(320, chart.root.parentElement.clientWidth), height: HEIGHT });
  }
}
