// The playground's page: controls, the neuron x feature heatmap and the curves, drawn on
// canvases from the snapshots two Web Workers send (the setting, and the baseline: bias 0,
// no decay, same seed). Settings live in the URL (?bias=&d=&lr=&k=&eps=&seed=&base=).
import { LIVE, RULE, clampSettings, ruleDecay } from "./trainer.js";

const PARAMS = { bias: "initBias", d: "decay", lr: "lr", k: "k", eps: "eps", seed: "seed" };
const NAMES = Object.fromEntries(Object.entries(PARAMS).map(([p, key]) => [key, p]));
const BASE_KEYS = ["lr", "k", "eps", "seed"]; // what the baseline shares with the setting
const COLORS = { run: "#2a7ab9", base: "#9a9a9a", mono: "#e8590c" };

const fmt = (v, d = 3) => (Math.abs(v) >= 1e-3 || v === 0 ? +v.toPrecision(d) : v.toExponential(1));

/** Mount every `.monosem-playground` on the page that is not mounted yet. */
export function mountAll(root = document) {
  const found = [...root.querySelectorAll(".monosem-playground:not([data-mounted])")];
  return found.map((el, i) => new Playground(el, i === 0 && el.dataset.url !== "0"));
}

// -- controls --------------------------------------------------------------------------------
// Each slider maps its position to a value (and back); lr and eps move on a log scale.
const SLIDERS = [
  { key: "initBias", label: "initial bias", min: -2, max: 1, step: 0.05, show: (v) => v.toFixed(2) },
  { key: "decay", label: "bias decay d", min: 0, max: 1, step: 0.01, show: (v) => fmt(v, 2) },
  {
    key: "lr", label: "learning rate", min: -3, max: Math.log10(0.03), step: 0.01,
    to: (p) => +Math.pow(10, p).toPrecision(2), from: Math.log10, show: (v) => fmt(v, 2),
  },
  { key: "k", label: "width k", min: 16, max: 256, step: 16, show: (v) => String(v) },
  {
    key: "eps", label: "sparsity eps", min: -7, max: -1, step: 1,
    to: (p) => Math.pow(2, p), from: Math.log2, show: (v) => `1/${fmt(1 / v, 3)}`,
  },
  { key: "seed", label: "seed", min: 0, max: 99, step: 1, show: (v) => String(v) },
];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

class Playground {
  constructor(root, useUrl) {
    this.root = root;
    root.dataset.mounted = "1";
    const given = root.dataset.settings ? JSON.parse(root.dataset.settings) : {};
    this.defaults = { ...LIVE, initBias: -1, decay: ruleDecay(LIVE.steps, LIVE.lr), ...given };
    this.rule = given.rule || RULE;
    this.useUrl = useUrl;
    const { settings, notes, baseline } = this.readUrl();
    this.settings = settings;
    this.baselineOn = baseline;
    this.playing = true;
    this.runs = { run: this.emptyRun(), base: this.emptyRun() };
    this.build(notes);
    this.workers = {
      run: this.makeWorker("run"),
      base: this.makeWorker("base"),
    };
    this.restart(true);
  }

  emptyRun() {
    return { id: 0, snap: null, curve: [], done: null, startedAt: 0, firstFrameMs: null };
  }

  readUrl() {
    const raw = {};
    let baseline = true;
    if (this.useUrl) {
      const q = new URLSearchParams(location.search);
      for (const [p, key] of Object.entries(PARAMS)) if (q.has(p)) raw[key] = q.get(p);
      if (q.has("base")) baseline = q.get("base") !== "0";
    }
    const { settings, notes } = clampSettings(raw, this.defaults, NAMES);
    return { settings, notes, baseline };
  }

  writeUrl() {
    if (!this.useUrl) return;
    const q = new URLSearchParams(location.search);
    for (const [p, key] of Object.entries(PARAMS)) q.set(p, String(this.settings[key]));
    q.set("base", this.baselineOn ? "1" : "0");
    history.replaceState(null, "", `${location.pathname}?${q}${location.hash}`);
  }

  build(notes) {
    const r = this.root;
    r.querySelector(".mp-fallback")?.remove();
    this.note = el("p", { class: "mp-note", role: "status" });
    this.showNotes(notes);
    const controls = el("div", { class: "mp-controls" });
    this.inputs = {};
    for (const s of SLIDERS) controls.append(this.slider(s));
    this.playBtn = el("button", { type: "button", class: "mp-play", text: "pause" });
    this.playBtn.onclick = () => this.togglePlay();
    const reset = el("button", { type: "button", class: "mp-reset", text: "reset" });
    reset.onclick = () => this.restart(true);
    const ruleBtn = el("button", { type: "button", class: "mp-rule", text: "recipe" });
    ruleBtn.title = "initial bias -1 and the rule's decay";
    ruleBtn.onclick = () => this.set({ initBias: -1, decay: this.ruleD() });
    this.baseBox = el("input", { type: "checkbox", class: "mp-base-toggle" });
    this.baseBox.checked = this.baselineOn;
    this.baseBox.onchange = () => this.toggleBaseline(this.baseBox.checked);
    const buttons = el(
      "div", { class: "mp-buttons" }, this.playBtn, reset, ruleBtn,
      el("label", {}, this.baseBox, " baseline beside (bias 0, no decay)"),
    );
    this.status = el("p", { class: "mp-status", "aria-live": "polite" });
    this.canvases = {
      run: el("canvas", { class: "mp-heat mp-heat-run" }),
      base: el("canvas", { class: "mp-heat mp-heat-base" }),
      curves: el("canvas", { class: "mp-curves" }),
    };
    this.titles = { run: el("figcaption", {}), base: el("figcaption", {}) };
    this.baseFig = el("figure", { class: "mp-fig mp-fig-base" }, this.titles.base, this.canvases.base);
    const legend = el("p", {
      class: "mp-legend",
      text: "Rows: features; columns: neurons, sorted by the feature they answer most. Colour: a "
        + "neuron's activation for each feature alone, relative to the largest. Orange marks "
        + "(the strip above, the outlined cell) are neurons passing the 0.999 criterion: "
        + "monosemantic. Grey in the strip: dead neurons.",
    });
    const panels = el(
      "div", { class: "mp-panels" },
      el("figure", { class: "mp-fig mp-fig-run" }, this.titles.run, this.canvases.run),
      this.baseFig,
      el("figure", { class: "mp-fig mp-fig-curves" },
        el("figcaption", { text: "loss (log scale) and mono/N as it trains" }), this.canvases.curves),
    );
    r.append(controls, buttons, this.note, this.status, panels, legend);
    this.baseFig.hidden = !this.baselineOn;
    this.syncInputs();
  }

  slider(s) {
    const to = s.to || ((p) => p), from = s.from || ((v) => v);
    const input = el("input", {
      type: "range", min: s.min, max: s.max, step: s.step, "aria-label": s.label,
      "data-key": s.key,
    });
    const out = el("output", {});
    input.oninput = () => {
      this.set({ [s.key]: to(Number(input.value)) });
    };
    const wrap = el("label", { class: `mp-slider mp-${s.key}` }, el("span", { text: s.label }), input, out);
    if (s.key === "decay") {
      this.mark = el("span", { class: "mp-rule-mark", title: "the rule's decay (ml.decay_for)" });
      this.mark.onclick = () => this.set({ decay: this.ruleD() });
      wrap.append(this.mark);
    }
    this.inputs[s.key] = { input, out, s, from };
    return wrap;
  }

  ruleD() {
    return +ruleDecay(this.settings.steps, this.settings.lr, this.rule).toFixed(4);
  }

  syncInputs() {
    for (const { input, out, s, from } of Object.values(this.inputs)) {
      const v = this.settings[s.key];
      input.value = String(from(v));
      out.textContent = s.show(v);
    }
    const d = this.ruleD(), s = this.inputs.decay.s;
    const at = Math.min(1, Math.max(0, (d - s.min) / (s.max - s.min)));
    this.mark.style.setProperty("--at", String(at));
    this.mark.textContent = `rule ${fmt(d, 2)}`;
  }

  showNotes(notes) {
    this.note.textContent = notes.length ? `Settings adjusted: ${notes.join("; ")}.` : "";
    this.note.hidden = !notes.length;
  }

  set(changes) {
    const { settings, notes } = clampSettings({ ...this.settings, ...changes }, this.defaults);
    const baseChanged = BASE_KEYS.some((key) => settings[key] !== this.settings[key]);
    this.settings = settings;
    this.showNotes(notes); // a note from the URL goes once the reader sets something
    this.syncInputs();
    this.writeUrl();
    this.restart(baseChanged);
  }

  // -- workers ------------------------------------------------------------------------------
  makeWorker(which) {
    const w = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    w.onmessage = (e) => this.receive(which, e.data);
    w.onerror = (e) => this.fail(`${which} worker: ${e.message || "failed to load"}`);
    return w;
  }

  fail(message) {
    this.root.dataset.state = "error";
    this.note.hidden = false;
    this.note.textContent = `The trainer stopped: ${message}`;
  }

  cfgOf(which) {
    const s = this.settings;
    return which === "run" ? { ...s } : { ...s, initBias: 0, decay: 0 };
  }

  restart(withBaseline) {
    if (!this.playing) for (const w of Object.values(this.workers)) w.postMessage({ type: "resume" });
    this.playing = true;
    this.playBtn.textContent = "pause";
    this.start("run");
    if (withBaseline && this.baselineOn) this.start("base");
    else if (this.baselineOn && !this.runs.base.id) this.start("base");
    this.root.dataset.state = "running";
    this.writeUrl();
  }

  start(which) {
    const prev = this.runs[which];
    const run = this.emptyRun();
    run.id = prev.id + 1;
    run.startedAt = performance.now();
    this.runs[which] = run;
    const d = this.root.dataset;
    const keys = which === "run"
      ? ["finalLoss", "elapsedMs", "msPerStep", "firstFrameMs"]
      : ["baseFinalLoss", "baseElapsedMs", "baseMono"];
    for (const key of keys) delete d[key];
    this.workers[which].postMessage({ type: "start", id: run.id, cfg: this.cfgOf(which) });
  }

  toggleBaseline(on) {
    this.baselineOn = on;
    this.baseFig.hidden = !on;
    if (on) this.start("base");
    else this.workers.base.postMessage({ type: "stop" });
    this.writeUrl();
    this.schedule();
  }

  togglePlay() {
    this.playing = !this.playing;
    const type = this.playing ? "resume" : "pause";
    for (const w of Object.values(this.workers)) w.postMessage({ type });
    this.playBtn.textContent = this.playing ? "pause" : "play";
    this.root.dataset.state = this.playing ? "running" : "paused";
  }

  receive(which, m) {
    const run = this.runs[which];
    if (m.id !== run.id) return; // from a run a newer setting replaced
    if (m.type === "error") return this.fail(m.message);
    if (m.type === "snap") {
      run.snap = m;
      run.fresh = true;
      run.curve.push(...m.curve);
    } else if (m.type === "done") {
      run.done = m;
    }
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  // -- drawing ------------------------------------------------------------------------------
  draw() {
    const t0 = performance.now();
    this.drawFrame();
    const ms = performance.now() - t0;
    this.drawMaxMs = Math.max(this.drawMaxMs || 0, ms);
    this.root.dataset.drawMaxMs = this.drawMaxMs.toFixed(1);
    this.root.dataset.frames = String((+this.root.dataset.frames || 0) + 1);
  }

  drawFrame() {
    const { run, base } = this.runs;
    for (const which of ["run", "base"]) {
      const r = this.runs[which];
      if (!r.snap || !r.fresh || (which === "base" && !this.baselineOn)) continue;
      r.fresh = false;
      drawHeatmap(this.canvases[which], r.snap);
      if (r.firstFrameMs === null) r.firstFrameMs = performance.now() - r.startedAt;
      const label = which === "run" ? "this setting" : "baseline (bias 0, no decay)";
      this.titles[which].textContent = `${label}: step ${r.snap.step} of ${r.snap.steps}, `
        + `mono/N ${r.snap.stats.monoPerN.toFixed(2)}`;
    }
    drawCurves(this.canvases.curves, run.curve, this.baselineOn ? base.curve : [], run.snap?.steps || 1);
    this.updateStatus();
  }

  updateStatus() {
    const { run, base } = this.runs;
    const d = this.root.dataset;
    if (!run.snap) return;
    const st = run.snap.stats;
    d.runId = run.id;
    d.step = run.snap.step;
    d.mono = st.monoPerN;
    d.covered = st.featuresCovered;
    d.dead = st.deadNeurons;
    d.firstFrameMs = run.firstFrameMs === null ? "" : run.firstFrameMs.toFixed(0);
    let text = `Step ${run.snap.step} / ${run.snap.steps}: mono/N ${st.monoPerN.toFixed(2)}, `
      + `features covered ${st.featuresCovered.toFixed(2)}, dead neurons ${st.deadNeurons}`;
    if (run.done) {
      d.finalLoss = run.done.finalLoss;
      d.elapsedMs = run.done.computeMs.toFixed(0);
      d.msPerStep = run.done.msPerStep.toFixed(3);
      text += `, loss ${fmt(run.done.finalLoss)}. Trained in ${(run.done.computeMs / 1000).toFixed(1)} s `
        + `(${run.done.msPerStep.toFixed(2)} ms a step).`;
    } else text += ".";
    if (this.baselineOn && base.snap) {
      d.baseMono = base.snap.stats.monoPerN;
      d.baseStep = base.snap.step;
      text += ` Baseline: mono/N ${base.snap.stats.monoPerN.toFixed(2)}`;
      if (base.done) {
        d.baseFinalLoss = base.done.finalLoss;
        d.baseElapsedMs = base.done.computeMs.toFixed(0);
        text += `, loss ${fmt(base.done.finalLoss)}`;
      }
      text += ".";
    }
    const finished = run.done && (!this.baselineOn || base.done);
    if (finished) d.state = "done";
    this.status.textContent = text;
  }
}

// Canvas widths in CSS pixels, measured by a ResizeObserver rather than on every frame (a
// read of clientWidth after a text change forces a layout).
const widths = new WeakMap();
const resized = new ResizeObserver((entries) => {
  for (const e of entries) widths.set(e.target, e.contentRect.width);
});

function fitCanvas(canvas, aspect) {
  if (!widths.has(canvas)) {
    resized.observe(canvas);
    widths.set(canvas, canvas.clientWidth || canvas.parentElement.clientWidth || 300);
  }
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(120, widths.get(canvas));
  const h = Math.round(w * aspect);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.height = `${h}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

/** Neurons sorted by the feature they answer most; monosemantic first in a feature, dead last. */
function neuronOrder(stats, k) {
  const order = Array.from({ length: k }, (_, n) => n);
  const key = (n) => (stats.dead[n] ? 1e9 : stats.top[n] * 4 + (stats.mono[n] ? 0 : 1));
  return order.sort((a, b) => key(a) - key(b) || stats.share[b] - stats.share[a]);
}

const pixels = new WeakMap(); // each canvas's k x (N + 1) image: the strip, then the features

function drawHeatmap(canvas, snap) {
  const { sfa, stats } = snap;
  const k = stats.mono.length, N = sfa.length / k;
  const { ctx, w, h } = fitCanvas(canvas, 0.42);
  let img = pixels.get(canvas);
  if (!img || img.width !== k || img.height !== N + 1) {
    img = { width: k, height: N + 1, data: new ImageData(k, N + 1), bitmap: new OffscreenCanvas(k, N + 1) };
    pixels.set(canvas, img);
  }
  const px = img.data.data;
  let mx = 0;
  for (let i = 0; i < sfa.length; i++) if (sfa[i] > mx) mx = sfa[i];
  const order = neuronOrder(stats, k);
  for (let c = 0; c < k; c++) {
    const n = order[c];
    const [r0, g0, b0] = stats.mono[n] ? [232, 89, 12] : stats.dead[n] ? [200, 200, 200] : [255, 255, 255];
    px.set([r0, g0, b0, 255], c * 4);
    for (let j = 0; j < N; j++) {
      const v = mx > 0 ? Math.sqrt(sfa[n * N + j] / mx) : 0, o = ((j + 1) * k + c) * 4;
      px[o] = 255 - 235 * v; px[o + 1] = 255 - 220 * v; px[o + 2] = 255; px[o + 3] = 255;
    }
  }
  img.bitmap.getContext("2d").putImageData(img.data, 0, 0);
  const strip = 6, top = strip + 2, cw = w / k, ch = (h - top) / N;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img.bitmap, 0, 0, k, 1, 0, 0, w, strip);
  ctx.drawImage(img.bitmap, 0, 1, k, N, 0, top, w, h - top);
  ctx.strokeStyle = COLORS.mono;
  ctx.lineWidth = Math.max(1, Math.min(cw, ch) / 4);
  ctx.beginPath();
  for (let c = 0; c < k; c++) {
    const n = order[c];
    if (stats.mono[n]) ctx.rect(c * cw, top + stats.top[n] * ch, cw, ch);
  }
  ctx.stroke();
}

function drawCurves(canvas, run, base, steps) {
  const { ctx, w, h } = fitCanvas(canvas, 0.42);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  const gap = 12, pw = (w - gap) / 2, ph = h - 22;
  const losses = [...run, ...base].map((p) => p[1]).filter((v) => v > 0);
  const lo = Math.log10(Math.min(...losses, 1e-2)), hi = Math.log10(Math.max(...losses, 1e-1));
  const monoMax = Math.max(0.5, ...[...run, ...base].map((p) => p[2]));
  const panels = [
    { x0: 0, title: `loss (log, ${fmt(10 ** lo, 2)} to ${fmt(10 ** hi, 2)})`, y: (p) => (Math.log10(Math.max(p[1], 1e-12)) - lo) / (hi - lo || 1) },
    { x0: pw + gap, title: `mono/N (0 to ${fmt(monoMax, 2)})`, y: (p) => p[2] / monoMax },
  ];
  ctx.font = "11px sans-serif";
  for (const pnl of panels) {
    ctx.strokeStyle = "#bbbbbb";
    ctx.lineWidth = 1;
    ctx.strokeRect(pnl.x0 + 0.5, 16.5, pw - 1, ph - 1);
    ctx.fillStyle = "#333333";
    ctx.fillText(pnl.title, pnl.x0 + 2, 11);
    for (const [pts, color, dash] of [[base, COLORS.base, [4, 3]], [run, COLORS.run, []]]) {
      if (!pts.length) continue;
      ctx.strokeStyle = color;
      ctx.setLineDash(dash);
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      pts.forEach((p, i) => {
        const x = pnl.x0 + (p[0] / steps) * pw, y = 16 + ph - Math.min(1, Math.max(0, pnl.y(p))) * ph;
        if (i) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
      });
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }
}
