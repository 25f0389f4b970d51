/**
 * What writing a trained model's artifacts costs the training child in
 * memory: the whole artifact and one per task, as the worker stores them,
 * built in memory (exportArtifact + zipArtifact + put, as the child did) or
 * streamed a weight at a time (artifactLayout + writeArtifact, as it does
 * now). Each way runs in a process of its own that trains the same 4-task
 * model (an MLP of WIDTH x 3 hidden layers, default 2048: 8.5M parameters)
 * for one epoch on the wasm backend, then writes into an embedded S3.
 * Prints each process's peak RSS growth while writing (VmHWM after the write
 * over VmHWM after training), the seconds taken, and the ratios.
 * Usage: npm run build && node dist/bench/artifact-write.js
 * (WIDTH, ROUNDS; MODES=stream or MODES=memory for one way only).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startEmbeddedS3 } from '#libs/embedded';
import { writeArtifact } from '#libs/federation';
import { ObjectStorage } from '#libs/storage';
import {
  artifactLayout,
  exportArtifact,
  selectBackend,
  train,
  zipArtifact,
  type ExportOptions,
  type TaskOptions,
  type TrainedModel,
} from '#libs/training';

import { CUSTOMER_FEATURES, customerTable } from './training-data';

const WIDTH = Number(process.env.WIDTH ?? 2048);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const MODES = (process.env.MODES ?? 'memory,stream').split(',');
const MiB = 1024 * 1024;
const TASKS: TaskOptions[] = [
  { name: 'value', kind: 'regression', target: 'value' },
  { name: 'churn', kind: 'binary', target: 'churn' },
  { name: 'tier', kind: 'multiclass', target: 'tier' },
  { name: 'tags', kind: 'multilabel', target: ['tagA', 'tagB'] },
];

interface ChildResult {
  parameters: number;
  growthMiB: number;
  seconds: number;
  bytes: number;
}

/** Peak resident memory of this process so far, in MiB. */
const peakMiB = () =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) /
  1024;

const storageFor = (config: string) =>
  new ObjectStorage({
    ...(JSON.parse(config) as {
      endpoint: string;
      accessKey: string;
      secretKey: string;
    }),
    region: 'us-east-1',
    bucket: 'bench',
    presignMaxSeconds: 600,
  });

/** The whole artifact and one per task, each as one object. */
async function writeAll(
  mode: string,
  storage: ObjectStorage,
  model: TrainedModel,
): Promise<number> {
  const exports: [string, ExportOptions][] = [
    ['all', {}],
    ...TASKS.map((t): [string, ExportOptions] => [t.name, { task: t.name }]),
  ];
  let bytes = 0;
  for (const [name, options] of exports) {
    const key = `${mode}/${name}.zip`;
    if (mode === 'memory') {
      const zip = await zipArtifact(await exportArtifact(model, options));
      await storage.put(key, zip, zip.length, 'application/zip');
      bytes += zip.length;
    } else {
      const layout = artifactLayout(model, options);
      const stored = await writeArtifact(storage, {
        key,
        modelJson: layout.modelJson,
        manifest: layout.manifest,
        specs: layout.specs,
        values: layout.values(),
      });
      bytes += stored.sizeBytes;
    }
  }

  return bytes;
}

async function child(mode: string, config: string): Promise<void> {
  await selectBackend({ prefer: ['wasm'] });
  const data = customerTable(512, 1);
  const result = await train({
    spec: {
      features: CUSTOMER_FEATURES,
      backbone: { kind: 'mlp', widths: [WIDTH, WIDTH, WIDTH] },
      tasks: TASKS,
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 1,
    batchSize: 256,
    recordSteps: false,
  });
  const storage = storageFor(config);
  const before = peakMiB();
  const started = process.hrtime.bigint();
  const bytes = await writeAll(mode, storage, result.model);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const out: ChildResult = {
    parameters: result.model.training.countParams(),
    growthMiB: peakMiB() - before,
    seconds,
    bytes,
  };
  result.model.dispose();
  process.stdout.write(JSON.stringify(out));
}

function spawn(mode: string, config: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [__filename, '--child', mode, config],
      { maxBuffer: MiB },
      (error, stdout) =>
        error ? reject(error) : resolve(JSON.parse(stdout) as ChildResult),
    );
  });
}

async function main() {
  const [flag, mode, config] = process.argv.slice(2);
  if (flag === '--child') {
    return child(mode, config);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-artifact-'));
  const s3 = await startEmbeddedS3({ directory: dir, port: 0 });
  try {
    const storageConfig = JSON.stringify({
      endpoint: s3.endpoint,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
    });
    await storageFor(storageConfig).ensureBucket();
    const results: Record<string, ChildResult[]> = Object.fromEntries(
      MODES.map((mode) => [mode, []]),
    );
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        results[mode].push(await spawn(mode, storageConfig));
      }
    }
    const first = results[MODES[0]][0];
    console.log(
      `${(first.parameters / 1e6).toFixed(2)}M parameters; 5 artifacts, ` +
        `${(first.bytes / MiB).toFixed(0)} MiB in all; ${ROUNDS} rounds`,
    );
    for (const [mode, runs] of Object.entries(results)) {
      console.log(
        `${mode.padEnd(7)} peak RSS growth ${runs.map((r) => r.growthMiB.toFixed(0)).join(', ')} MiB;` +
          ` ${runs.map((r) => r.seconds.toFixed(2)).join(', ')} s`,
      );
    }
    if (!results.memory || !results.stream) {
      return;
    }
    const mean = (runs: ChildResult[], f: (r: ChildResult) => number) =>
      runs.reduce((n, r) => n + f(r), 0) / runs.length;
    console.log(
      `stream / memory: peak RSS growth ${(
        mean(results.stream, (r) => r.growthMiB) /
        Math.max(
          1,
          mean(results.memory, (r) => r.growthMiB),
        )
      ).toFixed(2)}, seconds ${(
        mean(results.stream, (r) => r.seconds) /
        mean(results.memory, (r) => r.seconds)
      ).toFixed(2)}`,
    );
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
