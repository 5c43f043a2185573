// Node side of tests/test_playground.py. Usage:
//   node parity.mjs fixture <fixture.json>   weights and losses after the fixture's steps
//   node parity.mjs train <json of [{cfg}, ...]>   final metrics of each config, trained here
//   node parity.mjs clamp <json of raw URL values>  clampSettings's result
//   node parity.mjs constants                  the trainer's constants
// Prints one JSON object on stdout.
import { readFileSync } from "node:fs";
import * as T from "../../_static/playground/trainer.js";

const [mode, arg] = process.argv.slice(2);

function fixture(path) {
  const fx = JSON.parse(readFileSync(path, "utf8"));
  const { N, batch: B } = fx.config;
  const tr = new T.Trainer(fx.config, fx);
  const out = {};
  fx.batches.forEach((triples, i) => {
    const f = new Float64Array(B * N);
    for (const [s, j, v] of triples) f[s * N + j] = v;
    tr.stepOn(T.batchFromDense(f, B, N));
    const done = String(i + 1);
    if (done in fx.after) {
      const w = tr.weights();
      out[done] = { W1: [...w.W1], b: [...w.b], W2: [...w.W2], loss: [...tr.loss.slice(0, i + 1)] };
    }
  });
  return out;
}

function trainMany(cfgs) {
  return cfgs.map((cfg) => {
    const r = T.trainToEnd(cfg);
    const { monoPerN, featuresCovered, deadNeurons, monoNeurons } = r.metrics;
    return {
      final_loss: r.finalLoss, mono_per_feature: monoPerN, features_covered: featuresCovered,
      dead_neurons: deadNeurons, mono_neurons: monoNeurons, ms: r.ms, ms_per_step: r.msPerStep,
    };
  });
}

let result;
if (mode === "fixture") result = fixture(arg);
else if (mode === "train") result = trainMany(JSON.parse(arg));
else if (mode === "clamp") result = T.clampSettings(JSON.parse(arg));
else if (mode === "constants") {
  result = {
    LIVE: T.LIVE, RULE: T.RULE, MONO_THRESHOLD: T.MONO_THRESHOLD, DEAD_TOL: T.DEAD_TOL,
    EVAL_SAMPLES: T.EVAL_SAMPLES, ruleDecay: T.ruleDecay(T.LIVE.steps, T.LIVE.lr),
  };
} else throw new Error(`mode=${mode} is not allowed: must be fixture, train, clamp or constants`);
process.stdout.write(JSON.stringify(result));
