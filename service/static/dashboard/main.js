// The dashboard: key form, loop and window selectors, and a refresh every 10 s. A
// failed refresh (Redis down: 503) shows a banner and the next refresh still runs.
import { apiKey, get, loopData } from "./api.js";
import * as charts from "./charts.js";
import * as view from "./view.js";

const REFRESH_MS = 10000;
const $ = (id) => document.getElementById(id);
const state = { timer: null, running: 0, refreshes: 0, last: null };

function banner(text) {
  $("banner").textContent = text ?? "";
  $("banner").hidden = !text;
}

function message(err) {
  if (err.status === 503) return `Redis unavailable: ${err.message}`;
  if (err.status === 401 || err.status === 403) return `The key was refused: ${err.message}`;
  return `${err.status ? `Error ${err.status}` : "No answer"}: ${err.message}`;
}

async function loadLoops() {
  const { loops } = await get("v1/loops");
  const select = $("loop");
  const chosen = select.value || sessionStorage.getItem("cbserve.loop");
  select.replaceChildren(...loops.map(({ name }) => new Option(name, name)));
  if (loops.some((l) => l.name === chosen)) select.value = chosen;
}

function render({ health, models, challengers, audit, explain }) {
  view.status(health);
  view.figures(health);
  charts.reward(health.series);
  charts.rates(health.series);
  charts.actions(health.series);
  view.drift(health.drift ?? {});
  view.actions(health.actions ?? []);
  view.versions(models);
  view.challengers(challengers);
  view.audit(audit);
  view.weights(explain);
  view.recent(explain);
}

async function refresh() {
  clearTimeout(state.timer);
  state.running += 1;
  try {
    if (!apiKey.get()) return;
    if (!$("loop").options.length) await loadLoops();
    const data = await loopData($("loop").value, $("window").value);
    $("main").hidden = false;  // before drawing: the charts take the width they are given
    render(data);
    state.last = data;
    banner(null);
    $("updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (err) {
    banner(message(err));
    if (err.status === 401 || err.status === 403) showKeyForm(true);
  } finally {
    state.running -= 1;
    state.refreshes += 1;
    document.body.dataset.refreshes = state.refreshes;
    if (apiKey.get()) state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

function showKeyForm(shown) {
  $("key-form").hidden = !shown;
  $("forget").hidden = shown;
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  $("key").value = "";
  if (!key) return;
  apiKey.set(key);
  showKeyForm(false);
  refresh();
});
$("forget").addEventListener("click", () => {
  apiKey.clear();
  clearTimeout(state.timer);
  $("main").hidden = true;
  showKeyForm(true);
});
for (const id of ["loop", "window"]) {
  $(id).addEventListener("change", () => {
    sessionStorage.setItem(`cbserve.${id}`, $(id).value);
    refresh();
  });
}
window.addEventListener("resize", charts.resize);

$("window").value = sessionStorage.getItem("cbserve.window") ?? "1h";
showKeyForm(!apiKey.get());
if (!apiKey.get()) banner("Enter an admin API key: it stays in this browser tab only.");
// For the console and the tests: refresh now, and what the last refresh showed.
window.cbserveDashboard = { refresh, state };
refresh();
