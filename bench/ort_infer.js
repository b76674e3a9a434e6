#!/usr/bin/env node
// ort_infer: the ONNX Runtime twin of bench_models' inference measurement (issue 21): runs an
// ONNX image model (bench/ort_export.py) with npm onnxruntime-node (CPU execution provider), the
// way a Node user deploys it: one InferenceSession, intraOpNumThreads --threads (default 2),
// interOpNumThreads 1, all graph optimisations, sequential execution, ORT's own thread spinning
// unless --no-spin.
//   verification: --input IN.f32 --output OUT.f32 runs the model once on the raw float32 batch
//                 (N, C, S, S) in IN and writes the raw float32 outputs (N, K) to OUT.
//   timing:       --batch 1,256 times session.run at each batch on a fixed pseudo-random
//                 N(0, 1) batch (as bench_models: throughput does not depend on the data): the
//                 outputs are checked first (finite, (N, K), identical over two calls, the batch-1
//                 output equal to row 0 of the batch within 1e-5 + 1e-4 |y|), then warm-up calls,
//                 then timed calls (as many as bench_models makes: --iters at 256 images, up to
//                 50 * iters at batch 1); prints JSON with images/s at the median call and the
//                 spread (fastest, quartiles, slowest).
// Wall time per call includes onnxruntime-node's binding (tensor wrap, promise): what a caller
// pays.
// Usage: node bench/ort_infer.js --model M.onnx [--threads 2] [--batch 1,256] [--iters 10]
//        [--shape 1,28,28] [--no-spin] [--input IN.f32 --output OUT.f32]
// onnxruntime-node is found through NODE_PATH (compare_ort.py: BUILD/ort/node_modules).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = {threads: 2, batch: [1, 256], iters: 10, shape: [1, 28, 28], spin: true};
  for (let i = 2; i < argv.length; ++i) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    const ints = (s) => s.split(',').map((t) => {
      const n = Number(t);
      if (!Number.isInteger(n) || n <= 0) {
        throw new Error(`${k}: ${s} is not a list of positive integers`);
      }
      return n;
    });
    if (k === '--model') a.model = v();
    else if (k === '--threads') a.threads = ints(v())[0];
    else if (k === '--batch') a.batch = ints(v());
    else if (k === '--iters') a.iters = ints(v())[0];
    else if (k === '--shape') a.shape = ints(v());
    else if (k === '--no-spin') a.spin = false;
    else if (k === '--input') a.input = v();
    else if (k === '--output') a.output = v();
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.model) throw new Error('--model is required');
  if (!!a.input !== !!a.output) throw new Error('--input and --output go together');
  return a;
}

// bench_models' count of timed calls at a batch.
function inferReps(batch, iters) {
  return Math.max(iters, Math.min(50 * iters, Math.round((iters * 256) / batch)));
}

// N(0, 1) floats from a fixed seed (xorshift32 + Box-Muller).
function randn(n, seed) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function check(ok, what) {
  if (!ok) throw new Error(`verification failed: ${what}`);
}

async function run(session, data, batch, shape) {
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [batch, ...shape])};
  const out = await session.run(feeds);
  return out[session.outputNames[0]];  // (N, K)
}

async function verify(session, x, batch, shape) {
  const y1 = await run(session, x, batch, shape), y2 = await run(session, x, batch, shape);
  check(y1.dims.length === 2 && y1.dims[0] === batch, `output shape [${y1.dims}]`);
  const k = y1.dims[1];
  check(y1.data.every(Number.isFinite), 'outputs finite');
  check(y1.data.every((v, i) => v === y2.data[i]), 'outputs identical over two calls');
  const per = shape.reduce((p, d) => p * d, 1);
  const r0 = (await run(session, x.slice(0, per), 1, shape)).data;  // (1, K)
  for (let j = 0; j < k; ++j)
    check(Math.abs(r0[j] - y1.data[j]) <= 1e-5 + 1e-4 * Math.abs(y1.data[j]),
          `batch-1 output ${r0[j]} vs row 0 of the batch ${y1.data[j]} at class ${j}`);
}

async function time(session, batch, shape, iters) {
  const per = shape.reduce((p, d) => p * d, 1);
  const x = randn(batch * per, 12345);  // (N, C, S, S)
  if (batch > 1) await verify(session, x, batch, shape);
  const reps = inferReps(batch, iters), warmup = Math.max(3, Math.floor(reps / 10));
  for (let i = 0; i < warmup; ++i) await run(session, x, batch, shape);
  const t = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = process.hrtime.bigint();
    await run(session, x, batch, shape);
    t.push(Number(process.hrtime.bigint() - t0) * 1e-9);
  }
  t.sort((p, q) => p - q);
  const ips = (s) => batch / s;
  const med = quantile(t, 0.5);
  return {batch, reps, warmup, median_ms: med * 1e3, images_per_s: ips(med),
          images_per_s_max: ips(t[0]), images_per_s_q3: ips(quantile(t, 0.25)),
          images_per_s_q1: ips(quantile(t, 0.75)), images_per_s_min: ips(t[t.length - 1])};
}

async function main() {
  const a = parseArgs(process.argv);
  const options = {
    executionProviders: ['cpu'], intraOpNumThreads: a.threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
    extra: {session: {intra_op: {allow_spinning: a.spin ? '1' : '0'}}},
  };
  const session = await ort.InferenceSession.create(a.model, options);
  const per = a.shape.reduce((p, d) => p * d, 1);
  if (a.input) {
    const buf = fs.readFileSync(a.input);
    if (buf.length % (4 * per) !== 0) {
      throw new Error(`${a.input}: ${buf.length} bytes is not N x (${a.shape}) float32`);
    }
    const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    const y = await run(session, x, x.length / per, a.shape);  // (N, K)
    fs.writeFileSync(a.output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    console.log(JSON.stringify({framework: 'onnxruntime', batch: x.length / per, outputs: y.dims}));
    return;
  }
  const version = require('onnxruntime-node/package.json').version;
  const out = {framework: 'onnxruntime', onnxruntime: version, node: process.version,
               model: a.model, threads: a.threads, inter_op_threads: 1,
               allow_spinning: a.spin, infer: []};
  for (const b of a.batch) out.infer.push(await time(session, b, a.shape, a.iters));
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(`ort_infer: ${e.message}`);
  process.exit(1);
});
