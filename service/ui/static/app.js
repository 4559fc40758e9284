// The dashboard: sign in with an API token, the tenant's studies, and one study's multi-scale view,
// refreshed by polling the public REST API while the study is live. Everything is built with DOM calls
// (textContent, never innerHTML), so names and parameters from the API cannot inject markup.

import { ApiError, all, finite, get, token } from "./api.js";
import { barChart, colour, fmt, lineChart } from "./charts.js";

const STUDY_POLL_MS = 3000;
const LIST_POLL_MS = 5000;
// the scaling fit bootstraps on the server (CPU-bound): refetched at most this often, and only when the
// study has new measurements
const SCALING_POLL_MS = 30000;

const $ = (id) => document.getElementById(id);
let timer = null;
let generation = 0; // a view change invalidates polls still in flight for the previous view

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const pill = (state) => h("span", { class: `state ${state}` }, state);
const num = (v, digits = 4) => (finite(v) ? +v.toPrecision(digits) + "" : v === null || v === undefined ? "–" : String(v));
const pct = (f) => (f === null || f === undefined ? "–" : `${(100 * f).toFixed(1)}%`);

function show(section) {
  for (const id of ["sign-in", "studies", "study"]) $(id).hidden = id !== section;
  $("sign-out").hidden = section === "sign-in";
}

function poll(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

function stamp() {
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
}

// ------------------------------------------------------------------------------------------ sign in
function signIn(message = "") {
  clearTimeout(timer);
  generation++;
  show("sign-in");
  $("crumbs").replaceChildren();
  $("tenant").textContent = "";
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  token.set(value);
  try {
    await get("/v1/studies", { page_size: 1 }); // the token is checked by the API itself
  } catch (e) {
    token.clear();
    $("sign-in-error").textContent = e instanceof ApiError && e.status === 401 ? `Token refused: ${e.message}` : e.message;
    return;
  }
  $("token").value = "";
  route();
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401) { token.clear(); signIn(`Signed out: ${e.message}`); return true; }
  return false;
}

// ------------------------------------------------------------------------------------------ studies
async function showStudies() {
  const mine = ++generation;
  show("studies");
  $("crumbs").replaceChildren(h("span", {}, "/ studies"));
  const refresh = async () => {
    try {
      const studies = await all("/v1/studies");
      const progress = await Promise.all(studies.map((s) => get(`/v1/studies/${s.id}/progress`).catch(() => null)));
      if (mine !== generation) return;
      if (studies.length) $("tenant").textContent = `tenant ${studies[0].tenant}`;
      $("studies-empty").hidden = studies.length > 0;
      $("study-rows").replaceChildren(...studies.map((s, i) => studyRow(s, progress[i])));
      stamp();
    } catch (e) {
      if (failed(e)) return;
      $("studies-empty").hidden = false;
      $("studies-empty").textContent = e.message;
    }
    if (mine === generation) poll(refresh, LIST_POLL_MS);
  };
  await refresh();
}

function progressCell(p) {
  if (!p) return h("td", {}, "–");
  const bar = h("div", { class: "progress" }, h("div", {}));
  bar.firstChild.style.width = `${100 * (p.fraction_done || 0)}%`;
  return h("td", {}, bar, " ", pct(p.fraction_done), p.progress_limit ? h("small", {}, ` of ${p.progress_limit}`) : null);
}

function studyRow(s, p) {
  return h("tr", { "data-study-id": s.id },
    h("td", { class: "num" }, String(s.id)),
    h("td", {}, h("a", { href: `#/studies/${s.id}` }, s.name)),
    h("td", {}, pill(s.state)),
    h("td", {}, s.scheduler.name),
    progressCell(p),
    h("td", { class: "num" }, String(s.n_trials)),
    h("td", { class: "num" }, s.budget.max_cost ? `${num(s.cost_spent, 3)} / ${s.budget.max_cost}` : num(s.cost_spent, 3)),
    h("td", { class: "num" }, p ? num(p.best_value) : "–"),
    h("td", {}, new Date(s.created_at).toLocaleString()));
}

// ------------------------------------------------------------------------------------------ one study
async function showStudy(id) {
  const mine = ++generation;
  show("study");
  $("crumbs").replaceChildren(h("a", { href: "#/" }, "/ studies"), h("span", {}, `/ ${id}`));
  for (const box of ["chart-history", "chart-curves", "chart-budget", "chart-scaling", "chart-params"]) $(box).replaceChildren();
  delete $("chart-scaling").dataset.measurements;
  $("trial-rows").replaceChildren();
  $("study-error").textContent = "";
  $("rec-body").replaceChildren("loading…");
  const scaling = { at: 0, measurements: -1, pending: false };
  // the API answers the current prediction only; its trace over cost is what this page saw while open
  const predictions = [];
  const refresh = async () => {
    let live = true;
    try {
      const [study, progress, trials, measurements] = await Promise.all([
        get(`/v1/studies/${id}`), get(`/v1/studies/${id}/progress`),
        all(`/v1/studies/${id}/trials`), all(`/v1/studies/${id}/measurements`)]);
      const rec = await get(`/v1/studies/${id}/recommendation`).catch((e) => { if (failed(e)) throw e; return { error: e.message }; });
      const round = study.round ? await get(`/v1/studies/${id}/round`).catch((e) => { if (failed(e)) throw e; return { error: e.message }; }) : null;
      if (mine !== generation) return;
      renderRound(round);
      if (!rec.error && finite(rec.predicted) && predictions.at(-1)?.[0] !== progress.cost_spent) {
        const sd = finite(rec.std) ? rec.std : 0;
        predictions.push([progress.cost_spent, rec.predicted, rec.predicted - sd, rec.predicted + sd]);
      }
      renderStudy(study, progress, trials, measurements, rec, predictions);
      if (!scaling.pending && progress.n_measurements !== scaling.measurements && Date.now() - scaling.at > SCALING_POLL_MS) {
        scaling.pending = true;
        const asOf = scaling.measurements = progress.n_measurements;
        get(`/v1/studies/${id}/scaling`)
          .then((fit) => { if (mine === generation) { renderScaling(fit); $("chart-scaling").dataset.measurements = asOf; } })
          .catch((e) => { if (mine === generation && !failed(e)) renderScaling({ plot: [], warnings: [e.message] }); })
          .finally(() => { scaling.pending = false; scaling.at = Date.now(); });
      }
      // a final study changes no more, but its last scaling fit may still be due (or in flight)
      live = !["completed", "failed", "cancelled"].includes(study.state) || scaling.pending
        || scaling.measurements !== progress.n_measurements;
      stamp();
    } catch (e) {
      if (failed(e)) return;
      $("study-error").textContent = e.message;
    }
    if (mine === generation && live) poll(refresh, STUDY_POLL_MS);
  };
  await refresh();
}

function sizeColours(study) {
  return new Map(study.fidelity.sizes.map((s, i) => [s.name, colour(i)]));
}

function renderStudy(study, progress, trials, measurements, rec, predictions) {
  $("study-title").textContent = `${study.name} `;
  $("study-title").append(h("small", {}, `#${study.id} · ${study.scheduler.name}`));
  $("study-state").replaceChildren(pill(study.state));
  $("study-progress-bar").style.width = `${100 * (progress.fraction_done || 0)}%`;
  const limit = progress.progress_limit ? ` of ${progress.progress_limit}` : "";
  $("study-progress-text").textContent = `${pct(progress.fraction_done)}${limit} · cost ${num(progress.cost_spent, 3)}`
    + (progress.max_cost ? ` / ${progress.max_cost}` : "") + ` target runs · ${progress.n_trials} trials · `
    + `${progress.n_measurements} measurements`;
  $("study-error").textContent = study.error ? `Study error: ${study.error}` : "";
  const colours = sizeColours(study);
  const target = { size: study.target.size || study.fidelity.sizes.at(-1).name, steps: study.target.steps || study.fidelity.steps.max };
  renderRecommendation(rec, study);
  renderHistory(progress, rec, study, predictions);
  renderCurves(study, trials, measurements, colours, target);
  renderBudget(study, trials, measurements, colours);
  renderParams(study, trials, rec, colours);
  renderTrials(study, trials);
}

function renderRecommendation(rec, study) {
  const body = $("rec-body");
  if (rec.error) { body.replaceChildren(h("span", { class: "muted" }, rec.error)); return; }
  const metric = study.objective.metric;
  const predicted = finite(rec.predicted)
    ? h("div", { class: "big", "data-predicted": rec.predicted }, `${metric} ${num(rec.predicted)}`,
      finite(rec.std) ? h("small", {}, ` ± ${num(rec.std, 2)}`) : null)
    : h("div", { class: "muted" }, "no prediction yet");
  const rows = Object.entries(rec.params).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, typeof v === "number" ? num(v, 5) : String(v))));
  body.replaceChildren(...[
    predicted,
    h("div", { class: "muted" }, `at ${rec.size}, ${rec.steps} steps` + (rec.trial_id ? ` · from trial ${rec.trial_id}` : "")),
    h("table", { class: "rec-table" }, h("tbody", {}, rows)),
    rec.warnings.length ? h("ul", { class: "warnings" }, rec.warnings.map((w) => h("li", {}, w))) : null,
  ].filter(Boolean));
}

function renderRound(round) {
  $("round").hidden = !round;
  if (!round) return;
  const body = $("round-body");
  if (round.error) { body.replaceChildren(h("span", { class: "muted" }, round.error)); return; }
  const verdict = (p) => p.best ? "best" : p.distinguishable === null ? "–" : p.distinguishable ? "yes" : "no";
  const rows = round.points.map((p) => h("tr", { "data-best": String(p.best) },
    ...round.scientific.map((k) => h("td", {}, String(p.values[k]))),
    h("td", { class: "num" }, finite(p.mean) ? num(p.mean) : "–", finite(p.std) ? h("small", {}, ` ± ${num(p.std, 2)}`) : null),
    h("td", { class: "num" }, `${p.confirmations.length}` + (p.pending ? ` +${p.pending}` : "") + (p.failed ? ` (${p.failed} failed)` : "")),
    h("td", { class: "num" }, finite(p.p_value) ? num(p.p_value, 3) : "–"),
    h("td", {}, verdict(p)),
    h("td", { class: "num" }, `${p.search_trials} · ${num(p.search_cost, 3)}`),
    h("td", {}, Object.entries(p.params).filter(([k]) => !(k in p.values))
      .map(([k, v]) => `${k}=${typeof v === "number" ? num(v, 4) : v}`).join(", "))));
  const warnings = [...round.warnings, ...round.points.filter((p) => p.best).flatMap((p) => p.warnings)];
  body.replaceChildren(...[
    h("div", { class: "muted" }, `${round.phase} · ${round.seeds} seeds per value · Welch t-test against the best at alpha ${round.alpha}`),
    h("table", { class: "grid-table" },
      h("thead", {}, h("tr", {}, ...round.scientific.map((k) => h("th", {}, k)),
        ...["mean ± seed std", "seeds", "p", "distinguishable", "search trials · cost", "config"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)),
    warnings.length ? h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, w))) : null,
  ].filter(Boolean));
}

function renderHistory(progress, rec, study, predictions) {
  const best = progress.best_over_cost.map((p) => [p.cost, p.best]);
  const series = [{ label: "best measured at the target", colour: colour(0), points: best, step: true, markers: true,
    extendTo: progress.cost_spent }];
  if (!rec.error && finite(rec.predicted)) {
    const sd = finite(rec.std) ? rec.std : 0;
    series.push({ label: "predicted at the target ± 1 std (while this page was open)", colour: colour(3),
      points: predictions.map(([c, y]) => [c, y]), markers: true, radius: 2, band: predictions.map(([c, , lo, hi]) => [c, lo, hi]),
      errors: [[progress.cost_spent, rec.predicted, rec.predicted - sd, rec.predicted + sd]] });
  }
  lineChart($("chart-history"), { series, xLabel: "cost spent (target runs)", yLabel: study.objective.metric,
    empty: "nothing measured at the target yet", width: 760, height: 280 });
}

function curvesByTrial(measurements) {
  const out = new Map();
  for (const m of measurements) {
    if (!out.has(m.trial_id)) out.set(m.trial_id, []);
    out.get(m.trial_id).push(m);
  }
  return out;
}

function renderCurves(study, trials, measurements, colours, target) {
  const curves = curvesByTrial(measurements);
  const series = trials.filter((t) => curves.has(t.id)).map((t) => ({
    label: `trial ${t.id}`, group: t.size, colour: colours.get(t.size) || "#999", opacity: 0.75, markers: true, radius: 2,
    points: curves.get(t.id).filter((m) => finite(m.value)).map((m) => [m.step, m.value]),
  }));
  lineChart($("chart-curves"), { series, xLabel: "step", yLabel: study.objective.metric, vlines: [{ x: target.steps }],
    legend: study.fidelity.sizes.map((s) => ({ label: `${s.name}${s.name === target.size ? " (target)" : ""}`, colour: colours.get(s.name) })),
    width: 760, height: 300 });
}

function renderBudget(study, trials, measurements, colours) {
  const sizeOf = new Map(trials.map((t) => [t.id, t.size]));
  const cost = new Map(), count = new Map();
  for (const m of measurements) cost.set(sizeOf.get(m.trial_id), (cost.get(sizeOf.get(m.trial_id)) || 0) + m.cost);
  for (const t of trials) count.set(t.size, (count.get(t.size) || 0) + 1);
  const bars = study.fidelity.sizes.map((s) => ({ label: s.name, value: cost.get(s.name) || 0, colour: colours.get(s.name),
    note: `${num(cost.get(s.name) || 0, 3)} (${count.get(s.name) || 0})` }));
  barChart($("chart-budget"), { bars, yLabel: "cost (target runs)", empty: "no cost spent yet" });
}

function renderScaling(fit) {
  // the loss law against model size is the multi-scale question; a hyperparameter law (lr against N or D)
  // is shown while the loss law cannot be fitted yet
  const panels = fit.plot || [];
  const panel = panels.find((p) => p.quantity === "loss" && p.variable === "N")
    || panels.find((p) => p.quantity === "loss") || panels[0];
  const notes = [...(fit.warnings || [])];
  for (const p of fit.loss_predictions || []) {
    notes.push(`predicted at N=${fmt(p.N)}, D=${fmt(p.D)}: ${num(p.loss.value)} [${num(p.loss.low)}, ${num(p.loss.high)}]`);
  }
  $("scaling-notes").replaceChildren(...notes.map((n) => h("li", {}, n)));
  if (!panel) {
    lineChart($("chart-scaling"), { series: [], empty: "no scaling fit yet" });
    return;
  }
  const series = panel.curves.map((c, i) => ({ label: c.label, colour: colour(i + 1),
    points: c.x.map((x, j) => [x, c.value[j]]), band: c.x.map((x, j) => [x, c.low[j], c.high[j]]) }));
  series.push({ label: "measured (best per cell)", colour: "#1d2433", line: false, points: panel.points.map((p) => [p.x, p.y]) });
  lineChart($("chart-scaling"), { series, xLabel: panel.variable, yLabel: panel.quantity, logX: true, logY: true, title: panel.title,
    bandsInDomain: false });
  $("chart-scaling").prepend(h("div", { class: "caption" }, panel.title || `${panel.quantity} against ${panel.variable}`));
}

function renderParams(study, trials, rec, colours) {
  const box = $("chart-params");
  const numeric = study.space.filter((p) => p.type === "float" || p.type === "int");
  const measured = trials.filter((t) => finite(t.last_value));
  const charts = numeric.map((p) => {
    const div = h("div", { "data-param": p.name });
    const series = study.fidelity.sizes.map((s) => ({ label: s.name, colour: colours.get(s.name), line: false,
      points: measured.filter((t) => t.size === s.name && typeof t.params[p.name] === "number")
        .map((t) => [t.params[p.name], t.last_value]) }));
    const x = rec && !rec.error ? rec.params[p.name] : undefined;
    lineChart(div, { series, xLabel: p.name, yLabel: study.objective.metric, logX: !!p.log, width: 380, height: 240,
      vlines: finite(x) ? [{ x, colour: colour(3) }] : [] });
    return div;
  });
  box.replaceChildren(...(charts.length ? charts : [h("p", { class: "muted" }, "no numeric parameters")]));
}

function paramText(params) {
  return Object.entries(params).map(([k, v]) => `${k}=${typeof v === "number" ? num(v) : Array.isArray(v) ? `[${v.map((x) => num(x, 3)).join(", ")}]` : JSON.stringify(v)}`).join("  ");
}

function renderTrials(study, trials) {
  $("trial-count").textContent = `${trials.length}`;
  const rows = trials.slice().reverse().map((t) => h("tr", { "data-trial-id": t.id },
    h("td", { class: "num" }, String(t.id)), h("td", { class: "num" }, String(t.number)), h("td", {}, t.size),
    h("td", { class: "num" }, `${t.last_step ?? 0} / ${t.steps}`), h("td", {}, pill(t.state)),
    h("td", { class: "num" }, num(t.last_value)), h("td", { class: "params" }, paramText(t.params)),
    h("td", { class: "error" }, t.failure || "")));
  $("trial-rows").replaceChildren(...rows);
}

// ------------------------------------------------------------------------------------------ routing
function route() {
  if (!token.get()) { signIn(); return; }
  const match = location.hash.match(/^#\/studies\/(\d+)/);
  if (match) showStudy(Number(match[1])); else showStudies();
}

$("sign-in-form").addEventListener("submit", onSignIn);
$("sign-out").addEventListener("click", () => { token.clear(); signIn(); });
window.addEventListener("hashchange", route);
route();
