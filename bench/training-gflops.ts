/**
 * GFLOP/s of training a reference MLP (784-1024-1024-10, batch 256) with the
 * engine's step on each available backend, beside the backend's own
 * large matrix-multiply rate (1024 x 1024 x 1024), which bounds it.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/training-gflops.js
 */
import * as tf from '@tensorflow/tfjs';

import type { ColumnSchema } from '#libs/datasets';
import { selectBackend, train, type BackendName } from '#libs/training';

import { streamOf, timed } from './training-data';

const INPUTS = 784;
const WIDTHS = [1024, 1024];
const CLASSES = 10;
const BATCH = 256;

function matmulGflops(): number {
  const n = 1024;
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const multiply = () => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  };
  multiply();
  const repeats = 5;
  const started = process.hrtime.bigint();
  for (let i = 0; i < repeats; i++) {
    multiply();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  tf.dispose([a, b]);

  return (2 * n ** 3 * repeats) / seconds / 1e9;
}

async function mlpGflops(rows: number): Promise<number> {
  const columns: Record<string, Float32Array | Int32Array> = {};
  const schema: ColumnSchema[] = [];
  for (let f = 0; f < INPUTS; f++) {
    const name = `p${f}`;
    columns[name] = Float32Array.from({ length: rows }, (_, i) =>
      Math.sin(i * 0.37 + f),
    );
    schema.push({
      name,
      type: 'numeric',
      statistics: { count: rows, missing: 0, mean: 0, std: 0.7 },
    });
  }
  columns.label = Int32Array.from({ length: rows }, (_, i) => i % CLASSES);
  schema.push({
    name: 'label',
    type: 'categorical',
    statistics: { count: rows, missing: 0 },
    vocabulary: Array.from({ length: CLASSES }, (_, c) => String(c)),
  });
  const run = () =>
    train({
      spec: {
        features: schema.slice(0, INPUTS).map((c) => c.name),
        backbone: { kind: 'mlp', widths: WIDTHS },
        tasks: [{ name: 'label', kind: 'multiclass', target: 'label' }],
      },
      data: {
        schema: { columns: schema, rowCount: rows },
        train: streamOf(columns, rows),
      },
      epochs: 1,
      batchSize: BATCH,
      shuffleBuffer: 0,
      recordSteps: false,
    });
  const { result, seconds } = await timed(run);
  result.model.dispose();
  const trainSeconds = result.history.epochs[0].seconds || seconds;
  // Multiply-adds per row: forward 1x, backward 2x (inputs and weights).
  const sizes = [INPUTS, ...WIDTHS, CLASSES];
  let macs = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    macs += sizes[i] * sizes[i + 1];
  }

  return (6 * macs * rows) / trainSeconds / 1e9;
}

async function main() {
  const backends: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
  for (const backend of backends) {
    try {
      const choice = await selectBackend({ prefer: [backend] });
      const rows = backend === 'cpu' ? 1024 : 4096;
      console.log(
        JSON.stringify({
          backend: choice.backend,
          matmulGflops: Number(matmulGflops().toFixed(2)),
          mlpTrainingGflops: Number((await mlpGflops(rows)).toFixed(2)),
        }),
      );
    } catch (error) {
      console.log(
        JSON.stringify({
          backend,
          skipped: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
