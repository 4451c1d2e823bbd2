// Writes one loop's figures into the page (status, figures, tables). Text only, never
// HTML from the service: every value goes through textContent.
import * as fmt from "./format.js";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(tableId, rows, empty) {
  const body = document.querySelector(`#${tableId} tbody`);
  const trs = rows.map(({ cells, className }) => {
    const tr = document.createElement("tr");
    if (className) tr.className = className;
    tr.append(...cells.map((c) => (c instanceof Node ? c : cell(c))));
    return tr;
  });
  if (!trs.length) {
    const tr = document.createElement("tr");
    const td = cell(empty, "muted");
    td.colSpan = 8;
    tr.append(td);
    trs.push(tr);
  }
  body.replaceChildren(...trs);
}

export function status(health) {
  const badge = document.getElementById("badge");
  badge.textContent = health.status;
  badge.className = `badge ${health.status}`;
  document.getElementById("reasons").replaceChildren(...health.reasons.map((r) => {
    const li = document.createElement("li");
    li.className = r.level;
    li.dataset.code = r.code;
    li.textContent = `${r.level}: ${r.message}`;
    return li;
  }));
}

export function figures(health) {
  for (const dd of document.querySelectorAll("#figures dd")) {
    const value = fmt.pick(health, dd.dataset.field);
    dd.dataset.value = JSON.stringify(value ?? null);
    dd.textContent = fmt.byFormat[dd.dataset.format](value);
  }
}

function driftRow(name, state, details) {
  return { cells: [name, cell(state, state), details] };
}

export function drift(d) {
  const rows = [];
  const r = d.reward ?? {};
  if (r.state) {
    rows.push(driftRow("Reward", r.state, `${r.detector ?? ""}: recent mean ${fmt.num(r.mean_recent)}, ` +
      `reference ${fmt.num(r.mean_reference)}; ${fmt.int(r.detections)} detection(s) in ` +
      `${fmt.int(r.events)} events, last ${fmt.utc(r.last_detected)}`));
  }
  const c = d.context ?? {};
  if (c.namespaces) {
    const psi = Object.entries(c.namespaces).map(([ns, x]) => `${ns} ${fmt.num(x.psi, 3)}${x.drifted ? " (drifted)" : ""}`);
    rows.push(driftRow("Context", c.drifted ? "drift" : "ok", `PSI over ${fmt.int(c.window)} events: ${psi.join(", ") || "—"}`));
  }
  const a = d.actions ?? {};
  if ("psi" in a) rows.push(driftRow("Actions", a.drifted ? "drift" : "ok", `PSI ${fmt.num(a.psi, 3)}`));
  const k = d.correction ?? {};
  if (k.mode === "explore") {
    rows.push(driftRow("Correction", k.active ? "active" : "ended", `exploration floor ` +
      `${fmt.num(k.epsilon, 2)} from ${fmt.utc(k.started)} until decision ${fmt.int(k.until)}`));
  } else if (k.mode === "reset") {
    rows.push(driftRow("Correction", "done", `reset to a fresh model, v${k.version} ` +
      `(was v${k.previous}), at ${fmt.utc(k.started)}`));
  }
  fill("drift", rows, "no drift figures yet");
}

export function actions(list) {
  fill("actions", list.map((a) => ({ cells: [a.id, fmt.int(a.decisions), fmt.pct(a.share),
    fmt.int(a.rewards), fmt.num(a.mean)] })), "no decisions in this window");
}

export function versions(models) {
  fill("versions", [...models.models].reverse().map((m) => ({
    className: m.serving ? "serving" : "",
    cells: [`v${m.version}`, m.source, fmt.utc(m.created), fmt.int(m.parent), fmt.int(m.events_learned),
            fmt.int(m.figures.decisions), fmt.ci(m.figures.mean_reward, m.figures.low, m.figures.high),
            m.serving ? (models.learning ? "serving" : "serving, pinned") : m.served ? "served" : ""],
  })), "no model version yet");
}

const interval = (x) => (x ? fmt.ci(x.value, x.low, x.high) : "—");

export function challengers(report) {
  document.getElementById("champion").textContent = report.champion
    ? `Serving v${report.serving}: on-policy value ${interval(report.champion)} over the last ${report.window} events`
    : "";
  fill("challengers", report.challengers.map((c) => ({
    cells: [c.name, c.policy?.name ?? c.policy?.type ?? "", fmt.int(c.figures?.n), fmt.num(c.figures?.ess, 1),
            interval(c.figures?.snips), interval(c.figures?.dr), c.verdict,
            cell(c.gate.passes ? "passes" : c.gate.reasons.join("; "), c.gate.passes ? "ok" : "")],
  })), "no challengers configured");
}

export function audit(entries) {
  fill("audit", entries.map((e) => ({
    cells: [fmt.utc(e.time), e.action, e.key, fmt.int(e.version), fmt.int(e.from), fmt.bool(e.learn),
            fmt.bool(e.force), e.reason],
  })), "no entries");
}

const names = (w) => (w.features.length ? w.features.map((f) => `${f.name} ${fmt.num(f.weight, 3)}`).join(", ") : "—") +
  (w.more ? ` and ${w.more} more` : "");

export function weights(ex) {
  const s = ex?.summary;
  const rows = (s?.global ?? []).map((w) => ({ cells: ["all", w.kind, names(w), fmt.num(Math.abs(w.bucket_weight), 3), fmt.num(w.std, 3)] }));
  for (const [id, list] of Object.entries(s?.actions ?? {})) {
    rows.push(...list.slice(0, 5).map((w) => ({ cells: [id, w.kind, names(w), fmt.num(Math.abs(w.bucket_weight), 3), fmt.num(w.std, 3)] })));
  }
  fill("weights", rows, ex ? (ex.reason ?? "no weights learned yet") : "no model version yet");
}

function part(f) {
  const name = f.namespace ? `${f.namespace}.${f.feature}` : f.feature;
  const value = typeof f.value === "string" ? `=${f.value}` : "";
  return `${name}${value} ${fmt.num(f.contribution ?? f.attribution, 3)}`;
}

export function recent(ex) {
  const r = ex?.recent;
  document.getElementById("recent-caption").textContent = r
    ? `Event ${r.event_id} (logged by ${r.logged_policy?.name ?? "?"} v${r.logged_policy?.version ?? "?"}), ` +
      `decided again by v${ex.version}${r.method ? `, ${r.method}` : ""}, best action first`
    : "";
  fill("recent", (r?.actions ?? []).map((a) => ({
    cells: [a.id, fmt.num(a.score ?? a.q, 3), fmt.num(a.mean ?? a.q, 3), fmt.num(a.bonus ?? 0, 3),
            fmt.pct(a.probability?.value), a.features.slice(0, 3).map(part).join("; ")],
  })), r?.reason ?? "no decision to explain yet");
}
