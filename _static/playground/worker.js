// Trains one model in a Web Worker so the page never waits on it. Messages in:
//   {type: "start", id, cfg, points}   a new run (any run in progress is dropped at once)
//   {type: "pause"} / {type: "resume"} / {type: "stop"}
// Messages out:
//   {type: "snap", id, step, steps, sfa, stats, curve, computeMs, done}  at least every
//     SNAP_MS while training, and once at step 0 so a new setting shows at once;
//   {type: "done", id, finalLoss, computeMs, msPerStep, activePerSample}  after the last step.
import { Trainer, neuronStats } from "./trainer.js";

const SLICE_MS = 12; // compute between looks at the message queue
const SNAP_MS = 50; // at most this long between snapshots (20 a second)

let current = 0; // the run that may go on; a newer start or a stop ends the others
let paused = false;
let wake = null;

const channel = new MessageChannel();
const queue = [];
channel.port1.onmessage = () => queue.shift()();
// Lets queued messages (a new start, a pause) in between slices without a timer's delay.
const yieldToEvents = () => new Promise((r) => { queue.push(r); channel.port2.postMessage(0); });

self.onmessage = (e) => {
  const m = e.data;
  if (m.type === "start") {
    current++;
    paused = false;
    if (wake) wake();
    run(m, current).catch((err) => self.postMessage({ type: "error", id: m.id, message: String(err) }));
  } else if (m.type === "pause") {
    paused = true;
  } else if (m.type === "resume") {
    paused = false;
    if (wake) wake();
  } else if (m.type === "stop") {
    current++;
    if (wake) wake();
  }
};

function snapshot(tr, id, curve, computeMs) {
  const { k, N, steps } = tr.cfg;
  const sfa = tr.sfa();
  const st = neuronStats(sfa, k, N);
  const sfa32 = Float32Array.from(sfa);
  const msg = {
    type: "snap", id, step: tr.t, steps, sfa: sfa32, computeMs, done: tr.done,
    stats: {
      share: Float32Array.from(st.share), top: st.top, mono: st.mono, dead: st.dead,
      monoPerN: st.monoPerN, featuresCovered: st.featuresCovered, deadNeurons: st.deadNeurons,
      monoNeurons: st.monoNeurons,
    },
    curve,
  };
  self.postMessage(msg, [sfa32.buffer]);
}

async function run(m, me) {
  const tr = new Trainer(m.cfg);
  const every = Math.max(1, Math.round(tr.cfg.steps / (m.points || 100)));
  let curve = [], computeMs = 0, lastSnap = performance.now(), window = 0;
  snapshot(tr, m.id, curve, 0);
  while (!tr.done) {
    await yieldToEvents();
    if (me !== current) return;
    if (paused) {
      await new Promise((r) => { wake = r; });
      wake = null;
      lastSnap = performance.now();
      continue;
    }
    const t0 = performance.now();
    let now = t0;
    while (!tr.done && now - t0 < SLICE_MS) {
      window += tr.step();
      if (tr.t % every === 0 || tr.done) {
        const n = tr.t % every || every;
        const st = tr.metrics();
        curve.push([tr.t, window / n, st.monoPerN]);
        window = 0;
      }
      now = performance.now();
    }
    computeMs += now - t0;
    if (now - lastSnap >= SNAP_MS || tr.done) {
      snapshot(tr, m.id, curve, computeMs);
      curve = [];
      lastSnap = now;
    }
  }
  const finalLoss = tr.evalLoss();
  self.postMessage({
    type: "done", id: m.id, finalLoss, computeMs, msPerStep: computeMs / tr.cfg.steps,
    activePerSample: tr.activeNeurons / (tr.cfg.steps * tr.cfg.batch),
  });
}
