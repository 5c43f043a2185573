// The book's toy model, trained in plain JavaScript (no dependencies): the decoder task
// y = W2 relu(W1 x + b) ~ f with x = P f, trained by LAMB under one half-cosine with bias
// decay in the first half, exactly as monosem_lib.core.training applies them. Pure
// computation: importable from a Web Worker, the page and Node alike.
//
// Layouts (row-major, as the library's): P [m][N], W1 [k][m], b [k], W2 [N][k]. Internally
// W1 and W2 are kept transposed (W1T [m][k], W2T [k][N]) so every inner loop runs over
// contiguous memory: a neuron's outgoing weights, an input's incoming ones. A step
// goes forward through A = W1 P ([k][N], kept as AT [N][k]) over each sample's active
// features only, visits only the neurons a sample switches on, takes the gradient to A and
// then gW1 = gA P^T once per step.

export const MONO_THRESHOLD = 0.999; // analysis.metrics.MONO_THRESHOLD
export const DEAD_TOL = 1e-6; // analysis.metrics.DEAD_TOL
export const EVAL_SAMPLES = 16384; // analysis.defaults.EVAL_SAMPLES

// The live preset (core.config.PRESETS["live"]) and the rule for a half-cosine
// (paper.recipe.RULES["cosine"]); tests/test_playground.py holds both to the library.
export const LIVE = Object.freeze({
  N: 32, m: 16, k: 128, eps: 1 / 16, batch: 256, steps: 5000, lr: 0.01,
  initBias: 0, decay: 0, seed: 0,
});
export const RULE = Object.freeze({ d0: 0.23, b: 1.0, t0: 4000 });

// What the playground's controls allow: [min, max] and whether the value is an integer.
export const LIMITS = Object.freeze({
  initBias: [-2, 1, false],
  decay: [0, 2, false],
  lr: [0.001, 0.03, false],
  k: [16, 256, true],
  eps: [1 / 128, 1 / 2, false],
  seed: [0, 999, true],
});

/** The rule's bias decay for a run (paper.recipe.decay_for): d0 (T/t0)^(b-1), capped at 0.5/lr. */
export function ruleDecay(steps, lr, rule = RULE) {
  return Math.min(rule.d0 * Math.pow(steps / rule.t0, rule.b - 1), 0.5 / lr);
}

/**
 * Settings from untrusted values (a URL's parameters): each known key parsed and clamped to
 * LIMITS. Returns {settings, notes}, a note (one line) for every value that was not usable,
 * naming the value as `names` does (a URL's parameter names) or by its key.
 */
export function clampSettings(raw, base = LIVE, names = {}) {
  const settings = { ...base };
  const notes = [];
  for (const [key, [lo, hi, integer]] of Object.entries(LIMITS)) {
    if (raw[key] === undefined || raw[key] === null || raw[key] === "") continue;
    const text = String(raw[key]), name = names[key] || key;
    let v = Number(text);
    if (!Number.isFinite(v)) {
      notes.push(`${name}=${text} is not a number: using ${settings[key]}`);
      continue;
    }
    if (integer && !Number.isInteger(v)) v = Math.round(v);
    const c = Math.min(hi, Math.max(lo, v));
    if (c !== Number(text)) notes.push(`${name}=${text} is outside ${lo}..${hi}: using ${c}`);
    settings[key] = c;
  }
  if (settings.decay * settings.lr >= 1) {
    const d = 0.99 / settings.lr;
    notes.push(`${names.decay || "decay"} times lr must be below 1: using ${d}`);
    settings.decay = d;
  }
  return { settings, notes };
}

// -- random numbers ------------------------------------------------------------------------
function hashString(s) {
  let h = 2166136261 >>> 0; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** A seeded generator (sfc32) for one purpose of a seed: uniform floats in [0, 1). */
export class Rng {
  constructor(seed, purpose) {
    let x = (hashString(`monosem:${seed}:${purpose}`) ^ Math.imul(seed | 0, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x6d2b79f5) >>> 0; // splitmix32 to fill the state
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    for (let i = 0; i < 12; i++) this.uint();
  }
  uint() {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  float() { return this.uint() / 4294967296; }
  gauss() {
    const u = 1 - this.float(), v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * The fixed embedding P [m][N] (core.data.make_projection): a Gaussian N x m matrix, an
 * orthonormal basis of its columns (Gram-Schmidt: the SVD's U up to a rotation of the m
 * coordinates, which leaves P^T P unchanged), rows normalised, transposed.
 */
export function makeProjection(N, m, seed) {
  if (m > N) throw new Error(`m=${m} must be at most N=${N}`);
  const rng = new Rng(seed, "projection");
  const G = new Float64Array(N * m); // [N][m]
  for (let i = 0; i < N * m; i++) G[i] = rng.gauss();
  for (let c = 0; c < m; c++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let r = 0; r < N; r++) dot += G[r * m + c] * G[r * m + p];
        for (let r = 0; r < N; r++) G[r * m + c] -= dot * G[r * m + p];
      }
    }
    let nrm = 0;
    for (let r = 0; r < N; r++) nrm += G[r * m + c] ** 2;
    nrm = Math.sqrt(nrm);
    for (let r = 0; r < N; r++) G[r * m + c] /= nrm;
  }
  const P = new Float64Array(m * N);
  for (let r = 0; r < N; r++) {
    let nrm = 0;
    for (let c = 0; c < m; c++) nrm += G[r * m + c] ** 2;
    nrm = Math.sqrt(nrm);
    for (let c = 0; c < m; c++) P[c * N + r] = G[r * m + c] / nrm;
  }
  return P;
}

/** Initial weights as nn.Linear's (core.model.init_params), W2 as [N][k]. */
export function initWeights(N, m, k, seed, initBias) {
  const rng = new Rng(seed, "init");
  const a1 = 1 / Math.sqrt(m), a2 = 1 / Math.sqrt(k);
  const W1 = new Float64Array(k * m), b = new Float64Array(k), W2 = new Float64Array(N * k);
  for (let i = 0; i < W1.length; i++) W1[i] = (rng.float() * 2 - 1) * a1;
  for (let i = 0; i < k; i++) b[i] = (rng.float() * 2 - 1) * a1 + initBias;
  for (let i = 0; i < W2.length; i++) W2[i] = (rng.float() * 2 - 1) * a2;
  return { W1, b, W2 };
}

/**
 * A batch of sparse features, each of B*N trials on with probability eps and then uniform in
 * [0, 1), drawn by geometric skips (about eps*B*N draws). CSR: rows [B+1], idx, val.
 */
export class FeatureSampler {
  constructor(B, N, eps, rng) {
    this.B = B; this.N = N; this.eps = eps; this.rng = rng;
    this.logq = Math.log1p(-Math.min(eps, 1 - 1e-12));
    const cap = Math.max(64, Math.ceil(B * N * eps * 2 + 64));
    this.rows = new Int32Array(B + 1);
    this.idx = new Int32Array(cap);
    this.val = new Float64Array(cap);
  }
  sample() {
    const { B, N, rng, logq } = this;
    const total = B * N;
    let pos = -1, n = 0, row = 0;
    this.rows[0] = 0;
    for (;;) {
      pos += 1 + Math.floor(Math.log(1 - rng.float()) / logq);
      if (pos >= total) break;
      const s = (pos / N) | 0;
      while (row < s) this.rows[++row] = n;
      if (n === this.idx.length) this.grow();
      this.idx[n] = pos - s * N;
      this.val[n] = rng.float();
      n++;
    }
    while (row < B) this.rows[++row] = n;
    return this;
  }
  grow() {
    const idx = new Int32Array(this.idx.length * 2), val = new Float64Array(this.val.length * 2);
    idx.set(this.idx); val.set(this.val);
    this.idx = idx; this.val = val;
  }
}

/** A dense batch [B][N] as the sampler's CSR form. */
export function batchFromDense(f, B, N) {
  const rows = new Int32Array(B + 1), idx = [], val = [];
  for (let s = 0; s < B; s++) {
    for (let j = 0; j < N; j++) {
      const v = f[s * N + j];
      if (v !== 0) { idx.push(j); val.push(v); }
    }
    rows[s + 1] = idx.length;
  }
  return { rows, idx: Int32Array.from(idx), val: Float64Array.from(val) };
}

// -- the trainer ----------------------------------------------------------------------------
export class Trainer {
  /**
   * cfg: {N, m, k, eps, batch, steps, lr, initBias, decay, seed}. `init` ({P, W1, b, W2} in
   * the library's layouts) replaces the seeded projection and weights (the parity fixture).
   */
  constructor(cfg, init = null) {
    const c = (this.cfg = { ...LIVE, ...cfg });
    const { N, m, k } = c;
    this.P = init ? Float64Array.from(init.P) : makeProjection(N, m, c.seed);
    const w = init ? init : initWeights(N, m, k, c.seed, c.initBias);
    this.W1T = new Float64Array(m * k);
    for (let n = 0; n < k; n++) for (let i = 0; i < m; i++) this.W1T[i * k + n] = w.W1[n * m + i];
    this.b = Float64Array.from(w.b);
    this.W2T = new Float64Array(k * N);
    for (let i = 0; i < N; i++) for (let n = 0; n < k; n++) this.W2T[n * N + i] = w.W2[i * k + n];
    this.gW1T = new Float64Array(m * k); this.gb = new Float64Array(k);
    this.gW2T = new Float64Array(k * N);
    this.AT = new Float64Array(N * k); this.gAT = new Float64Array(N * k);
    this.pre = new Float64Array(k); this.dpre = new Float64Array(k);
    this.act = new Int32Array(k); this.r = new Float64Array(N);
    const tensors = [[this.W1T, this.gW1T], [this.b, this.gb], [this.W2T, this.gW2T]];
    this.lamb = tensors.map(([wt, g]) => ({
      w: wt, g, mo: new Float64Array(wt.length), ve: new Float64Array(wt.length),
      u: new Float64Array(wt.length),
    }));
    this.t = 0;
    this.loss = new Float64Array(c.steps);
    this.activeNeurons = 0; // neuron-sample pairs visited, for the benchmark
    this.sampler = new FeatureSampler(c.batch, N, c.eps, new Rng(c.seed, "data"));
  }

  get done() { return this.t >= this.cfg.steps; }

  /** A = W1 P, kept as AT [N][k]: AT[j][n] = sum_i P[i][j] W1T[i][n]. */
  computeA() {
    const { N, m, k } = this.cfg, { W1T, P, AT } = this;
    AT.fill(0);
    for (let j = 0; j < N; j++) {
      const row = j * k;
      for (let i = 0; i < m; i++) {
        const p = P[i * N + j], col = i * k;
        for (let n = 0; n < k; n++) AT[row + n] += p * W1T[col + n];
      }
    }
  }

  /** One step on a fresh batch from the data stream; returns its loss. */
  step() {
    return this.stepOn(this.sampler.sample());
  }

  /** One step on a CSR batch {rows, idx, val}; returns the batch loss (before the update). */
  stepOn(batch) {
    const loss = this.gradient(batch);
    this.update();
    this.loss[this.t] = loss;
    this.t++;
    return loss;
  }

  /** Loss of a batch and its gradient in gW1T, gb, gW2T. */
  gradient({ rows, idx, val }) {
    const { N, m, k, batch: B } = this.cfg;
    const { AT, gAT, b, gb, W2T, gW2T, pre, dpre, act, r, P, gW1T } = this;
    this.computeA();
    gAT.fill(0); gb.fill(0); gW2T.fill(0);
    const scale = 2 / B, N4 = N - (N % 4);
    let loss = 0, visited = 0;
    for (let s = 0; s < B; s++) {
      const q0 = rows[s], q1 = rows[s + 1];
      pre.set(b);
      for (let q = q0; q < q1; q++) {
        const v = val[q], off = idx[q] * k;
        for (let n = 0; n < k; n++) pre[n] += v * AT[off + n];
      }
      let na = 0;
      for (let n = 0; n < k; n++) if (pre[n] > 0) act[na++] = n;
      visited += na;
      r.fill(0);
      for (let a = 0; a < na; a++) {
        const n = act[a], h = pre[n], off = n * N;
        let i = 0;
        for (; i < N4; i += 4) {
          const o = off + i;
          r[i] += h * W2T[o]; r[i + 1] += h * W2T[o + 1];
          r[i + 2] += h * W2T[o + 2]; r[i + 3] += h * W2T[o + 3];
        }
        for (; i < N; i++) r[i] += h * W2T[off + i];
      }
      for (let q = q0; q < q1; q++) r[idx[q]] -= val[q];
      for (let i = 0; i < N; i++) {
        loss += r[i] * r[i];
        r[i] *= scale;
      }
      for (let a = 0; a < na; a++) {
        const n = act[a], h = pre[n], off = n * N;
        // four partial sums: one running sum would wait on every addition
        let g0 = 0, g1 = 0, g2 = 0, g3 = 0, i = 0;
        for (; i < N4; i += 4) {
          const o = off + i, r0 = r[i], r1 = r[i + 1], r2 = r[i + 2], r3 = r[i + 3];
          g0 += W2T[o] * r0; g1 += W2T[o + 1] * r1; g2 += W2T[o + 2] * r2; g3 += W2T[o + 3] * r3;
          gW2T[o] += h * r0; gW2T[o + 1] += h * r1; gW2T[o + 2] += h * r2; gW2T[o + 3] += h * r3;
        }
        for (; i < N; i++) {
          g0 += W2T[off + i] * r[i];
          gW2T[off + i] += h * r[i];
        }
        const g = g0 + g1 + (g2 + g3);
        dpre[a] = g;
        gb[n] += g;
      }
      for (let q = q0; q < q1; q++) {
        const v = val[q], off = idx[q] * k;
        for (let a = 0; a < na; a++) gAT[off + act[a]] += v * dpre[a];
      }
    }
    // gW1 = gA P^T: gW1T[i][n] = sum_j P[i][j] gAT[j][n]
    gW1T.fill(0);
    for (let i = 0; i < m; i++) {
      const col = i * k;
      for (let j = 0; j < N; j++) {
        const p = P[i * N + j], row = j * k;
        for (let n = 0; n < k; n++) gW1T[col + n] += p * gAT[row + n];
      }
    }
    this.activeNeurons += visited;
    return loss / B;
  }

  /** LAMB (optim.BatchedLamb) at the scheduled rate, then bias decay in the first half. */
  update() {
    const { steps, lr, decay } = this.cfg, t = this.t;
    const rate = lr * 0.5 * (1 + Math.cos((Math.PI * t) / steps));
    for (const p of this.lamb) lambStep(p, rate);
    if (decay > 0 && t < steps / 2) {
      const f = 1 - decay * lr, b = this.b;
      for (let n = 0; n < b.length; n++) b[n] *= f;
    }
  }

  /** Single-feature activations [k][N]: relu(A[n][j] + b[n]), every feature alone at 1. */
  sfa(out = new Float64Array(this.cfg.k * this.cfg.N)) {
    const { N, k } = this.cfg;
    this.computeA();
    for (let n = 0; n < k; n++) {
      for (let j = 0; j < N; j++) out[n * N + j] = Math.max(0, this.AT[j * k + n] + this.b[n]);
    }
    return out;
  }

  /** The book's numbers (analysis.metrics.summarize, without the loss): see neuronStats. */
  metrics(sfa = this.sfa()) {
    return neuronStats(sfa, this.cfg.k, this.cfg.N);
  }

  /** Loss on `samples` fresh samples from an evaluation stream (metrics.evaluate_loss). */
  evalLoss(samples = EVAL_SAMPLES) {
    const { N, k, batch } = this.cfg;
    const sampler = new FeatureSampler(batch, N, this.cfg.eps, new Rng(this.cfg.seed, "eval"));
    const { AT, b, W2T, pre, act, r } = this;
    this.computeA();
    let total = 0, n = 0;
    while (n < samples) {
      const { rows, idx, val } = sampler.sample();
      for (let s = 0; s < batch; s++) {
        pre.set(b);
        for (let q = rows[s]; q < rows[s + 1]; q++) {
          const v = val[q], off = idx[q] * k;
          for (let u = 0; u < k; u++) pre[u] += v * AT[off + u];
        }
        let na = 0;
        for (let u = 0; u < k; u++) if (pre[u] > 0) act[na++] = u;
        r.fill(0);
        for (let a = 0; a < na; a++) {
          const u = act[a], h = pre[u], off = u * N;
          for (let i = 0; i < N; i++) r[i] += h * W2T[off + i];
        }
        for (let q = rows[s]; q < rows[s + 1]; q++) r[idx[q]] -= val[q];
        for (let i = 0; i < N; i++) total += r[i] * r[i];
      }
      n += batch;
    }
    return total / n;
  }

  /** The weights in the library's layouts: W1 [k][m], b [k], W2 [N][k]. */
  weights() {
    const { N, k } = this.cfg;
    const W2 = new Float64Array(N * k);
    for (let n = 0; n < k; n++) for (let i = 0; i < N; i++) W2[i * k + n] = this.W2T[n * N + i];
    const { m } = this.cfg, W1 = new Float64Array(k * m);
    for (let n = 0; n < k; n++) for (let i = 0; i < m; i++) W1[n * m + i] = this.W1T[i * k + n];
    return { W1, b: Float64Array.from(this.b), W2 };
  }
}

function lambStep(p, rate) {
  // torch-optimizer's Lamb: moments without bias correction, eps 1e-6, trust ratio
  // min(||w||, 10) / ||update||, 1 where ||w|| = 0 or the ratio is not finite.
  const { w, g, mo, ve, u } = p;
  let wn = 0, un = 0;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i];
    const m1 = (mo[i] += 0.1 * (gi - mo[i]));
    const v1 = (ve[i] = ve[i] * 0.999 + 0.001 * gi * gi);
    const ui = m1 / (Math.sqrt(v1) + 1e-6);
    u[i] = ui;
    un += ui * ui;
    wn += w[i] * w[i];
  }
  wn = Math.min(Math.sqrt(wn), 10);
  un = Math.sqrt(un);
  let trust = wn > 0 ? wn / un : 1;
  if (!Number.isFinite(trust)) trust = 1;
  const c = rate * trust;
  for (let i = 0; i < w.length; i++) w[i] -= c * u[i];
}

/**
 * Classify neurons from single-feature activations sfa [k][N] (metrics.monosemanticity):
 * share = max / (1e-10 + sum), monosemantic above MONO_THRESHOLD, dead when max <= DEAD_TOL.
 */
export function neuronStats(sfa, k, N) {
  const share = new Float64Array(k), top = new Int32Array(k);
  const mono = new Uint8Array(k), dead = new Uint8Array(k);
  const owned = new Uint8Array(N);
  let nMono = 0, nDead = 0;
  for (let n = 0; n < k; n++) {
    let mx = -Infinity, arg = 0, sum = 0;
    for (let j = 0; j < N; j++) {
      const v = sfa[n * N + j];
      sum += v;
      if (v > mx) { mx = v; arg = j; }
    }
    top[n] = arg;
    if (mx <= DEAD_TOL) { dead[n] = 1; nDead++; continue; }
    share[n] = mx / (1e-10 + sum);
    if (share[n] > MONO_THRESHOLD) { mono[n] = 1; nMono++; owned[arg] = 1; }
  }
  let covered = 0;
  for (let j = 0; j < N; j++) covered += owned[j];
  return {
    share, top, mono, dead,
    monoNeurons: nMono, monoPerN: nMono / N, featuresCovered: covered / N, deadNeurons: nDead,
  };
}

/** Train a config to the end; returns {trainer, ms, msPerStep, metrics, finalLoss}. */
export function trainToEnd(cfg, now = () => performance.now()) {
  const tr = new Trainer(cfg);
  const t0 = now();
  while (!tr.done) tr.step();
  const ms = now() - t0;
  return {
    trainer: tr, ms, msPerStep: ms / tr.cfg.steps, metrics: tr.metrics(), finalLoss: tr.evalLoss(),
  };
}
