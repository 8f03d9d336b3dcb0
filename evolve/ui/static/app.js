// evolve's web view: overview, lineage, MAP-Elites replay, program pages, failures, run comparison.
// Everything read from an archive (code, outputs, LLM prompts and replies, reasons) is untrusted text:
// it only ever reaches the page through textContent, esc(), or highlight.js (which escapes).
"use strict";

const REPORT = window.EVOLVE_REPORT || null; // a static report: {runs, data: {api path: payload}}
const S = { run: 0, runs: [], charts: [], timers: [], lastId: 0, onNewPrograms: null };
const OPERATOR_COLORS = {
  ast_mutate: "#7f8c8d", ast_crossover: "#95a5a6", llm_diff: "#2980b9", llm_rewrite: "#8e44ad",
  llm_crossover: "#16a085", llm_repair: "#d35400", polish: "#f39c12", seed: "#2c3e50",
};

// A polish trial's changed constants, "0.9 → 0.95, 1e-08 → 3e-08" (null for other operators).
function polishedConstants(info) {
  if (!info || !Array.isArray(info.constants)) return null;
  return info.constants.map((c) => `${c.from} → ${c.to}`).join(", ") + ` (trial ${info.trial} of #${info.polish_of})`;
}

async function api(path) {
  if (REPORT) {
    if (path in REPORT.data) return REPORT.data[path];
    throw new Error("not included in this report (open the run with `evolve ui` for everything)");
  }
  const r = await fetch("/api/" + path, { credentials: "same-origin" });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
  return r.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
function fmt(x, digits = 4) {
  if (x == null) return "–";
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : Number(x.toPrecision(digits)).toString();
  return String(x);
}
const plink = (id) => el("a", { href: `#/program/${Number(id)}` }, `#${Number(id)}`);
const section = (title, ...body) => el("section", {}, el("h2", {}, title), ...body);
const card = (label, value, extra) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), extra || null);
function kv(rows) {
  return el("table", { class: "kv" }, rows.filter((r) => r[1] != null && r[1] !== "").map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}
function table(headers, rows, attrs) {
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

function chart(container, option) {
  const c = echarts.init(container, null, { renderer: "canvas" });
  c.setOption({ animation: false, tooltip: { trigger: "axis", confine: true }, grid: { left: 60, right: 20, top: 30, bottom: 40 }, ...option });
  S.charts.push(c);
  return c;
}
const chartBox = (cls) => el("div", { class: "chart " + (cls || "") });
window.addEventListener("resize", () => S.charts.forEach((c) => c.resize()));

function clearPage() {
  S.charts.forEach((c) => c.dispose());
  S.charts = [];
  S.timers.forEach(clearInterval);
  S.timers = [];
  S.onNewPrograms = null;
}

// -- live updates: new programs are fetched by id, never by re-reading the archive ---------------
async function poll() {
  if (REPORT || !S.runs.length) return;
  try {
    const head = await api(`${S.run}/head`);
    document.getElementById("live").textContent = `live · ${head.state} · ${head.evaluations} evaluations`;
    if (head.last_id > S.lastId) {
      const first = S.lastId === 0;
      const page = first ? { programs: [] } : await api(`${S.run}/programs?after=${S.lastId}&limit=5000`);
      S.lastId = first ? head.last_id : page.last_id;
      if (!first && S.onNewPrograms) await S.onNewPrograms(page.programs);
    }
  } catch (e) { /* the run may be mid-write; the next poll will tell */ }
}

// -- overview -------------------------------------------------------------------------------------------
async function overview(root) {
  const o = await api(`${S.run}/overview`);
  const body = el("div", {});
  root.append(body);
  const charts = {};
  function render(o) {
    body.replaceChildren();
    const c = o.champion;
    const b = o.budget;
    body.append(el("div", { class: "cards" },
      card("state", o.run.state, o.run.stop_reason ? el("div", { class: "note" }, o.run.stop_reason) : null),
      card("problem", `${o.run.problem} v${o.run.problem_version}`),
      el("div", { class: "card", id: "evaluations-card" }, el("div", { class: "label" }, "evaluations"),
        el("div", { class: "value", id: "evaluations" }, `${b.evaluations} / ${b.max_evaluations}`)),
      card("champion", c ? el("span", {}, plink(c.id), c.validated_fitness != null ? ` validated ${withInterval(c.validated_fitness, c.validated_interval)}` : ` fitness ${fmt(c.fitness)}`) : "–",
        c ? el("div", { class: "note", id: "champion" }, `search ${fmt(c.fitness)}` +
          (c.confirmed_fitness != null ? ` · confirmed on fresh seeds ${withInterval(c.confirmed_fitness, c.confirmed_interval)}` : "") +
          ` · held-out ${withInterval(c.heldout_fitness, c.heldout_interval)}`) : null),
      card("isolation", o.isolation ? (o.isolation.fitness === "self-reported" ? "SELF-REPORTED fitness" : o.isolation.mode) : "unknown",
        el("div", { class: "note", id: "isolation" }, o.isolation ? o.isolation.summary + (o.isolation.fitness === "self-reported" ?
          " · the candidate shares its evaluator's process and can set its own score" : "") : "recorded since schema 3")),
      card("LLM spend", o.budget.llm_tokens ? `$${fmt(o.budget.llm_cost, 3)} · ${o.budget.llm_tokens} tokens` : "no LLM calls",
        o.budget.max_llm_cost ? el("div", { class: "note" }, `budget $${o.budget.max_llm_cost}`) : null),
    ));
    const grid = el("div", { class: "grid2" });
    body.append(grid);
    const boxes = {};
    for (const [key, title] of [["best", "Best fitness vs evaluations"], ["rate", "Evaluations per minute"],
      ["failures", "Failure share by kind"], ["rejections", "Rejections by reason"], ["llm", "LLM spend and budget"]]) {
      boxes[key] = chartBox();
      grid.append(section(title, boxes[key]));
    }
    const islands = o.series.islands.map((s, i) => ({ name: `island ${i}`, type: "line", step: "end", showSymbol: false, data: s, lineStyle: { width: 1 } }));
    chart(boxes.best, {
      legend: { top: 0 }, xAxis: { type: "value", name: "evaluations", min: 0 }, yAxis: { type: "value", scale: true, name: "fitness" },
      series: [{ name: "best so far", type: "line", step: "end", showSymbol: false, data: o.series.best, lineStyle: { width: 3 } }, ...islands],
    });
    chart(boxes.rate, {
      xAxis: { type: "value", name: "seconds" }, yAxis: { type: "value", name: "per minute" },
      series: [{ type: "bar", data: o.series.rate_per_minute, barMaxWidth: 20 }],
    });
    const kinds = [...new Set(o.series.failure_share.flatMap((r) => Object.keys(r).filter((k) => k !== "evaluations")))];
    chart(boxes.failures, {
      legend: { top: 0, type: "scroll" }, grid: { left: 60, right: 20, top: 40, bottom: 40 }, xAxis: { type: "value", name: "evaluations" }, yAxis: { type: "value", max: 1, name: "share" },
      series: kinds.map((k) => ({ name: k, type: "line", stack: "f", areaStyle: {}, showSymbol: false, data: o.series.failure_share.map((r) => [r.evaluations, r[k] || 0]) })),
    });
    const rej = Object.entries(o.counts.rejections || {});
    chart(boxes.rejections, {
      xAxis: { type: "category", data: rej.map((r) => r[0]) }, yAxis: { type: "value" },
      series: [{ type: "bar", data: rej.map((r) => r[1]), barMaxWidth: 40 }],
    });
    const limit = o.budget.max_llm_cost;
    chart(boxes.llm, {
      xAxis: { type: "value", name: "seconds" }, yAxis: { type: "value", name: "USD" },
      series: [{ name: "cost", type: "line", step: "end", showSymbol: false, data: o.series.llm_spend.map((p) => [p[0], p[1]]),
        markLine: limit ? { symbol: "none", data: [{ yAxis: limit, name: "budget" }] } : undefined }],
      title: o.series.llm_spend.length ? undefined : { text: "no LLM calls in this run", left: "center", top: "middle", textStyle: { fontSize: 13, color: "#888" } },
    });
    body.append(section("Islands", table(["island", "best", "program", "evaluations", "since improvement"],
      o.islands.map((r) => [r.island, fmt(r.best_fitness), r.best_program_id ? plink(r.best_program_id) : "–", r.evaluations, r.since_improvement]))));
    const models = Object.entries(o.llm || {});
    if (models.length) {
      body.append(section("LLM calls by model", table(["model", "attempts", "failed", "failed by cause", "tokens in / out", "cost"],
        models.map(([m, s]) => [m, s.attempts, s.errors, Object.entries(s.failed_by_cause || {}).map(([c, n]) => `${c}: ${n}`).join(", ") || "none",
          `${s.tokens_in} / ${s.tokens_out}`, s.cost == null ? "price unknown" : `$${fmt(s.cost, 3)}`]), { id: "llm-models" })));
    }
    body.append(section("Counts", kv(Object.entries(o.counts).map(([k, v]) => [k, Object.entries(v).map(([a, n]) => `${a}: ${n}`).join(", ") || "none"]))));
    body.append(section("Config", el("pre", { class: "config" }, JSON.stringify(o.config, null, 2))));
  }
  render(o);
  S.onNewPrograms = async () => { S.charts.forEach((c) => c.dispose()); S.charts = []; render(await api(`${S.run}/overview`)); };
}

// -- lineage ---------------------------------------------------------------------------------------------
async function lineage(root) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const top = Number(params.get("top") || 20);
  const showFailed = params.get("failed") === "1";
  const g = await api(`${S.run}/lineage?top=${top}`);
  const controls = el("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); const f = new FormData(e.target); location.hash = `#/lineage?top=${Number(f.get("top")) || 20}&failed=${f.get("failed") ? 1 : 0}`; } },
    el("label", {}, "ancestors of the best ", el("input", { name: "top", type: "number", min: 1, max: 500, value: top, style: "width:5em" })),
    el("label", {}, el("input", { name: "failed", type: "checkbox", ...(showFailed ? { checked: "" } : {}) }), " show failed and rejected"),
    el("button", {}, "apply"),
    el("label", {}, " find program ", el("input", { id: "find", inputmode: "numeric", style: "width:6em" })));
  const note = el("p", { class: "note" }, g.pruned ? `${g.total} programs: showing the ancestors of the best ${g.top} (and the champion)` : `all ${g.total} programs`);
  const box = chartBox("tall");
  const side = el("aside", { class: "side" }, el("p", { class: "note" }, "Click a program. Steps on the champion's path (red) show their diff."));
  root.append(section("Lineage", controls, note, el("div", { class: "split" }, box, side)));
  const nodes = g.nodes.filter((n) => showFailed || n.fitness != null);
  const fit = nodes.filter((n) => n.fitness != null).map((n) => n.fitness);
  const lo = fit.length ? Math.min(...fit) : 0, hi = fit.length ? Math.max(...fit) : 1;
  const floor = lo - 0.08 * (hi - lo || 1);
  const pos = new Map(nodes.map((n) => [n.id, [n.id, n.fitness != null ? n.fitness : floor]]));
  const onPath = new Set(g.champion_path);
  const byOp = {};
  const pathEdges = [];
  for (const e of g.edges) {
    if (!pos.has(e.source) || !pos.has(e.target)) continue;
    const coords = [pos.get(e.source), pos.get(e.target)];
    if (onPath.has(e.source) && onPath.has(e.target) && !e.mate) pathEdges.push({ coords });
    else (byOp[e.operator] = byOp[e.operator] || []).push({ coords });
  }
  box.dataset.nodes = String(nodes.length);
  box.dataset.edges = String(pathEdges.length + Object.values(byOp).reduce((a, l) => a + l.length, 0));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const c = chart(box, {
    tooltip: { trigger: "item", confine: true, formatter: (p) => {
      const n = byId.get(p.value[2]);
      return n ? `#${esc(n.id)} ${esc(n.operator)}<br>fitness ${esc(fmt(n.fitness))}<br>${esc(n.status)}${n.llm_model ? "<br>" + esc(n.llm_model) : ""}` : "";
    } },
    legend: { top: 0, type: "scroll" },
    xAxis: { type: "value", name: "program id", scale: true }, yAxis: { type: "value", name: "fitness", scale: true },
    dataZoom: [{ type: "inside", xAxisIndex: 0 }, { type: "inside", yAxisIndex: 0 }],
    visualMap: { show: false, dimension: 3, min: lo, max: hi, inRange: { color: ["#440154", "#31688e", "#35b779", "#fde725"] }, seriesIndex: 0 },
    series: [
      { name: "programs", type: "scatter", large: nodes.length > 2000, symbolSize: (v) => (onPath.has(v[2]) ? 9 : 5),
        data: nodes.map((n) => [...pos.get(n.id), n.id, n.fitness != null ? n.fitness : lo]),
        itemStyle: { borderColor: "#c0392b", borderWidth: 0 } },
      ...Object.entries(byOp).map(([op, data]) => ({ name: op, type: "lines", coordinateSystem: "cartesian2d", large: data.length > 2000, data, lineStyle: { color: OPERATOR_COLORS[op] || "#999", opacity: 0.35, width: 1 } })),
      { name: "champion's path", type: "lines", coordinateSystem: "cartesian2d", data: pathEdges, lineStyle: { color: "#c0392b", width: 3, opacity: 0.9 }, z: 10 },
    ],
  });
  async function showNode(id) {
    const n = byId.get(id);
    side.replaceChildren(el("p", {}, "loading…"));
    try {
      const d = await api(`${S.run}/program/${id}`);
      const p = d.program;
      const parent = d.diffs[0];
      const change = parent && p.fitness != null && parent.fitness != null ? p.fitness - parent.fitness : null;
      side.replaceChildren(el("h3", {}, plink(id), ` ${p.operator}`),
        kv([["fitness", fmt(p.fitness)], ["change", change == null ? null : (change >= 0 ? "+" : "") + fmt(change)],
          ["validated", fmt(p.validated_fitness)], ["status", p.status], ["model", p.llm ? p.llm.model : null],
          ["said", p.operator_info && p.operator_info.summary ? p.operator_info.summary : null],
          ["constants", polishedConstants(p.operator_info)]]),
        onPath.has(id) && parent ? diffView(parent.diff) : null);
    } catch (e) {
      side.replaceChildren(el("h3", {}, `#${id}`), kv([["operator", n ? n.operator : ""], ["fitness", n ? fmt(n.fitness) : ""]]), el("p", { class: "note" }, e.message));
    }
  }
  c.on("click", (p) => { if (p.seriesIndex === 0) showNode(p.value[2]); });
  document.getElementById("find").addEventListener("change", (e) => {
    const id = Number(e.target.value);
    if (byId.has(id)) { c.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: nodes.findIndex((n) => n.id === id) }); showNode(id); }
    else side.replaceChildren(el("p", {}, `program ${id} is not shown here: `, plink(id)));
  });
}

// -- MAP-Elites ------------------------------------------------------------------------------------------
function binLabels(d) {
  if (d.low == null || d.bins < 2) return [...Array(d.bins).keys()].map(String);
  const w = (d.high - d.low) / d.bins;
  return [...Array(d.bins).keys()].map((i) => fmt(d.low + i * w, 3));
}
async function mapPage(root) {
  const e = await api(`${S.run}/events`);
  const d = e.descriptors;
  const dims = d.length >= 2 ? [d[0], d[1]] : d.length === 1 ? [d[0], { name: "", bins: 1, low: 0, high: 1 }] : [{ name: "", bins: 1 }, { name: "", bins: 1 }];
  const cells = dims[0].bins * dims[1].bins * (d.length > 2 ? d.slice(2).reduce((a, x) => a * x.bins, 1) : 1);
  const slider = el("input", { type: "range", min: 0, max: e.events.length, value: e.events.length, id: "replay", style: "width:100%" });
  const label = el("span", { id: "replay-label" });
  const log = el("ol", { class: "eventlog" });
  const grid = el("div", { class: "islands" });
  root.append(section("MAP-Elites islands", el("p", { class: "note" },
    d.length ? `cells over ${d.map((x) => `${x.name} (${x.bins} bins, ${x.low}..${x.high})`).join(" × ")}${d.length > 2 ? "; the heatmaps show the first two, best over the rest" : ""}` : "this problem declares no descriptors: one cell per island"),
  el("div", { class: "controls" }, slider, label), grid, section("Events up to here", log)));
  const boxes = [];
  for (let i = 0; i < e.num_islands; i++) {
    const b = chartBox("square");
    boxes.push(b);
    grid.append(el("div", { class: "island" }, el("h3", {}, `island ${i}`), b));
  }
  const charts = boxes.map((b) => chart(b, {
    tooltip: { trigger: "item", formatter: (p) => `#${esc(p.value[3])}<br>fitness ${esc(fmt(p.value[2]))}` },
    grid: { left: 50, right: 10, top: 10, bottom: 40 },
    xAxis: { type: "category", name: dims[0].name, data: binLabels(dims[0]) },
    yAxis: { type: "category", name: dims[1].name, data: binLabels(dims[1]) },
    visualMap: { show: false, dimension: 2, min: 0, max: 1, inRange: { color: ["#440154", "#31688e", "#35b779", "#fde725"] } },
    series: [{ type: "heatmap", data: [] }],
  }));
  charts.forEach((c) => c.on("click", (p) => { if (p.value && p.value[3]) location.hash = `#/program/${p.value[3]}`; }));
  const allFit = e.events.map((x) => x.fitness).filter((x) => x != null);
  const fmin = allFit.length ? Math.min(...allFit) : 0, fmax = allFit.length ? Math.max(...allFit) : 1;
  function replay(k) {
    const islands = [...Array(e.num_islands)].map(() => new Map());
    for (const ev of e.events.slice(0, k)) {
      const isl = islands[ev.island];
      if (ev.kind === "island_reset") isl.clear();
      isl.set(ev.cell.join(","), { id: ev.program_id, fitness: ev.fitness, cell: ev.cell });
    }
    return islands;
  }
  // coverage and QD-score after every event (QD-score: fitness above the run's lowest elite, summed over cells)
  const qd = [], cover = [];
  { const islands = [...Array(e.num_islands)].map(() => new Map());
    e.events.forEach((ev, i) => {
      const isl = islands[ev.island];
      if (ev.kind === "island_reset") isl.clear();
      isl.set(ev.cell.join(","), ev.fitness);
      const x = ev.finished != null ? ev.finished : i + 1;
      let filled = 0, score = 0;
      islands.forEach((m) => { filled += m.size; m.forEach((f) => { score += f - fmin; }); });
      cover.push([x, filled / (cells * e.num_islands)]);
      qd.push([x, score]);
    }); }
  const qdBox = chartBox();
  root.append(section("Coverage and QD-score", qdBox));
  chart(qdBox, { legend: { top: 0 }, xAxis: { type: "value", name: e.events.length && e.events[0].finished != null ? "evaluations" : "events" },
    yAxis: [{ type: "value", name: "coverage", max: 1 }, { type: "value", name: "QD-score" }],
    series: [{ name: "coverage", type: "line", showSymbol: false, data: cover }, { name: "QD-score", type: "line", yAxisIndex: 1, showSymbol: false, data: qd }] });
  function draw() {
    const k = Number(slider.value);
    const islands = replay(k);
    islands.forEach((m, i) => {
      const best = new Map();
      m.forEach((v) => { const key = `${v.cell[0]},${v.cell.length > 1 ? v.cell[1] : 0}`; if (!best.has(key) || best.get(key).fitness < v.fitness) best.set(key, v); });
      charts[i].setOption({ visualMap: { min: fmin, max: fmax }, series: [{ data: [...best.values()].map((v) => [v.cell[0], v.cell.length > 1 ? v.cell[1] : 0, v.fitness, v.id]) }] });
      boxes[i].dataset.filled = String(m.size);
    });
    const last = e.events[k - 1];
    label.textContent = k ? `event ${k} of ${e.events.length} (seq ${last.seq})` : "before the first event";
    grid.dataset.seq = last ? String(last.seq) : "0";
    log.replaceChildren(...e.events.slice(Math.max(0, k - 8), k).reverse().map((ev) => el("li", {},
      `${ev.kind.replace("_", " ")} on island ${ev.island}: `, plink(ev.program_id), ` (${fmt(ev.fitness)})`,
      ev.from_island != null ? ` from island ${ev.from_island}` : "", ev.donor_island != null ? ` from island ${ev.donor_island}` : "")));
  }
  slider.addEventListener("input", draw);
  draw();
}

// -- program ---------------------------------------------------------------------------------------------
function diffView(text) {
  return el("pre", { class: "diff" }, text.split("\n").map((line) => el("span", {
    class: line.startsWith("+++") || line.startsWith("---") ? "meta" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "",
  }, line + "\n")));
}
function codeView(code) {
  const c = el("code", { class: "hljs language-python" });
  if (window.hljs) c.innerHTML = hljs.highlight(code, { language: "python", ignoreIllegals: true }).value; // hljs escapes its input
  else c.textContent = code;
  return el("pre", { class: "code" }, c);
}
function metricsView(m) {
  if (m && typeof m === "object" && m.tasks && typeof m.tasks === "object") {
    const rows = Object.entries(m.tasks).map(([t, v]) => [t, fmt(v.score), fmt(v.val_loss), fmt(v.best_lr, 2), fmt(v.adamw_val_loss_at_n), fmt(v.seconds, 3)]);
    return el("div", {}, table(["task", "score", "val loss", "best lr", "AdamW loss at N", "seconds"], rows),
      kv(Object.entries(m).filter(([k]) => k !== "tasks").map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : fmt(v)])));
  }
  if (m && typeof m === "object") return kv(Object.entries(m).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : fmt(v)]));
  return el("span", {}, fmt(m));
}
function tierInterval(p, role) {
  const r = (p.metrics || {})[role];
  return r && r.metrics && r.metrics[role] ? r.metrics[role].interval : null;
}
function withInterval(v, iv) {
  if (v == null) return "–";
  return iv ? `${fmt(v)} [${fmt(iv[0], 3)}, ${fmt(iv[1], 3)}]` : fmt(v);
}
async function programPage(root, id) {
  const d = await api(`${S.run}/program/${Number(id)}`);
  const p = d.program;
  root.append(el("h1", {}, `Program #${p.id} `, el("span", { class: "badge " + p.status }, p.status), ` ${p.operator}`));
  root.append(el("div", { class: "cards" },
    card("search fitness", fmt(p.fitness)), card("validated", withInterval(p.validated_fitness, tierInterval(p, "validate"))),
    card("held-out", withInterval(p.heldout_fitness, tierInterval(p, "heldout"))),
    card("island / generation", `${p.island} / ${p.generation}`)));
  root.append(section("Record", kv([
    ["parents", p.parent_ids.length ? el("span", {}, p.parent_ids.map((i) => [plink(i), " "])) : "none (seed)"],
    ["children", d.children.length ? el("span", {}, d.children.map((c) => [plink(c.id), " "])) : "none"],
    ["duplicate of", p.duplicate_of ? el("span", {}, plink(p.duplicate_of), ` (${p.rejection})`) : null],
    ["its duplicates", d.duplicates.length ? el("span", {}, d.duplicates.map((x) => [plink(x.id), ` (${x.rejection}) `])) : null],
    ["failure kind", p.failure_kind], ["rejection", p.rejection], ["reason", p.reason], ["stage reached", p.stage_reached],
    ["fingerprint", p.fingerprint], ["evaluation seconds", fmt(p.eval_seconds, 3)],
    ["what changed", p.operator_info ? JSON.stringify(p.operator_info) : null],
  ])));
  const stages = Object.entries(p.metrics || {}).filter(([k]) => !["validate", "confirm", "heldout", "cached", "artifacts"].includes(k));
  if (stages.length) root.append(section("Metrics per stage", ...stages.map(([k, v]) => el("div", {}, el("h3", {}, k), metricsView(v)))));
  for (const role of ["validate", "confirm", "heldout"]) {
    const r = (p.metrics || {})[role];
    const title = { validate: "Validation", confirm: "Confirmation on fresh seeds", heldout: "Held-out" }[role];
    if (r) root.append(section(title, r.fitness != null ? el("div", {}, kv([["fitness (95% over seeds)", withInterval(r.fitness, tierInterval(p, role))]]), ...Object.entries(r.metrics || {}).map(([k, v]) => el("div", {}, el("h3", {}, k), metricsView(v)))) : kv([["failure", r.failure_kind], ["reason", r.reason]])));
  }
  if ((p.metrics || {}).artifacts) root.append(section("Artifacts", kv(Object.entries(p.metrics.artifacts).map(([k, v]) => [k, el("pre", {}, typeof v === "string" ? v : JSON.stringify(v, null, 2))]))));
  root.append(section("Code", codeView(p.code)));
  for (const df of d.diffs) root.append(section(`Diff to parent #${df.parent}`, df.diff ? diffView(df.diff) : el("p", {}, "identical")));
  if (p.output) root.append(section("Captured output", el("pre", { class: "output" }, p.output)));
  if (p.llm) {
    let messages = [];
    try { messages = JSON.parse(p.llm.prompt || "[]"); } catch (e) { messages = [{ role: "prompt", content: p.llm.prompt }]; }
    root.append(section("LLM", kv([["model", p.llm.model], ["tokens", `${fmt(p.llm.tokens_in)} in, ${fmt(p.llm.tokens_out)} out`],
      ["cost", p.llm.cost == null ? "price unknown" : `$${fmt(p.llm.cost, 3)}`], ["latency", `${fmt(p.llm.latency_s, 3)} s`]]),
    el("details", {}, el("summary", {}, "prompt"), ...messages.map((m) => el("div", {}, el("h4", {}, m.role), el("pre", { class: "prompt" }, m.content)))),
    el("h3", {}, "reply"), el("pre", { class: "reply" }, p.llm.response || "(none)"),
    el("h3", {}, "every attempt"), table(["attempt", "purpose", "model", "tokens in/out", "cost", "latency", "error"],
      d.llm_calls.map((c) => [c.attempt, c.purpose, c.model, `${fmt(c.tokens_in)}/${fmt(c.tokens_out)}`, fmt(c.cost, 3), fmt(c.latency_s, 3), c.error || ""]))));
  }
}

// -- failures --------------------------------------------------------------------------------------------
async function failuresPage(root) {
  const f = await api(`${S.run}/failures`);
  const grid = el("div", { class: "grid3" });
  root.append(section("Failures and rejections", grid));
  for (const [key, title] of [["by_kind", "by kind"], ["by_operator", "by operator"], ["by_model", "by model"]]) {
    const b = chartBox("small");
    grid.append(el("div", {}, el("h3", {}, title), b));
    const entries = Object.entries(f[key]).sort((a, b) => b[1] - a[1]);
    chart(b, { grid: { left: 110, right: 10, top: 10, bottom: 30 }, yAxis: { type: "category", data: entries.map((x) => x[0]), inverse: true },
      xAxis: { type: "value" }, series: [{ type: "bar", data: entries.map((x) => x[1]), barMaxWidth: 18 }] });
  }
  root.append(section("Newest first", table(["program", "kind", "operator", "model", "stage", "reason"],
    f.rows.map((r) => [plink(r.id), r.kind, r.operator, r.llm_model || "", r.stage_reached || "", el("span", { class: "reason" }, r.reason || "")]), { id: "failures-table" })));
}

// -- compare ----------------------------------------------------------------------------------------------
async function comparePage(root) {
  const c = await api("compare");
  const names = Object.keys(c.runs);
  const grid = el("div", { class: "grid3" });
  root.append(section(`Comparing ${names.length} run${names.length === 1 ? "" : "s"}`, grid));
  for (const [key, axis] of [["by_evaluations", "evaluations"], ["by_time", "seconds"], ["by_cost", "LLM cost (USD)"]]) {
    const b = chartBox();
    grid.append(el("div", {}, el("h3", {}, `best fitness vs ${axis}`), b));
    chart(b, { legend: { top: 0, type: "scroll" }, xAxis: { type: "value", name: axis }, yAxis: { type: "value", scale: true },
      series: names.map((n) => ({ name: n, type: "line", step: "end", showSymbol: false, data: c.runs[n][key] })) });
  }
  root.append(table(["run", "problem", "state", "evaluations", "LLM cost"], names.map((n) => [n, c.runs[n].problem, c.runs[n].state, c.runs[n].evaluations, `$${fmt(c.runs[n].total_cost, 3)}`])));
}

// -- routing ----------------------------------------------------------------------------------------------
const PAGES = { overview, lineage, map: mapPage, failures: failuresPage, compare: comparePage, program: programPage };

async function route() {
  clearPage();
  const root = document.getElementById("page");
  root.replaceChildren();
  delete root.dataset.ready;
  const [path] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = path.split("/");
  const page = PAGES[name] ? name : "overview";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  try {
    await PAGES[page](root, arg);
  } catch (e) {
    root.append(el("p", { class: "error" }, `could not show this page: ${e.message}`));
  }
  root.dataset.ready = page;
}

async function start() {
  S.runs = REPORT ? REPORT.runs : await api("runs");
  const select = document.getElementById("run-select");
  S.runs.forEach((r, i) => select.append(el("option", { value: i }, `${r.name} (${r.problem}, ${r.state})`)));
  select.addEventListener("change", () => { S.run = Number(select.value); S.lastId = 0; poll().then(route); });
  document.getElementById("compare-link").hidden = S.runs.length < 2;
  document.getElementById("goto").addEventListener("submit", (e) => { e.preventDefault(); location.hash = `#/program/${Number(document.getElementById("goto-id").value)}`; });
  document.getElementById("live").textContent = REPORT ? `report written ${REPORT.written}` : "live";
  if (!REPORT) {
    await poll();
    S.pollTimer = setInterval(poll, 2500);
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
