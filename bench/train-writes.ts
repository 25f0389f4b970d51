/**
 * What the training child's writes cost it in memory, each way in a process
 * of its own that trains the same 4-task model (an MLP of WIDTH x 3 hidden
 * layers, default 2048: 8.4M parameters) on the wasm backend and writes
 * into an embedded S3:
 * - artifacts (the whole one and one per task): `memory` built whole
 *   (exportArtifact + zipArtifact + put, as the child did) against `stream`
 *   (artifactLayout + writeArtifact, a weight at a time, as it does now);
 *   growth is VmHWM after the writes over VmHWM after one epoch;
 * - checkpoints (weights, Adam's slots, best weights), stored every epoch of
 *   2: `concat` (one buffer of header, JSON and data, put, as the child did)
 *   against `parts` (the pieces streamed in one PUT, as it does now); growth
 *   is VmHWM after training over VmHWM before it, checkpoints included.
 * - resuming (the `parts` run's last checkpoint, read back in a process that
 *   trained nothing): `joined` (read whole, then copied, as the child did)
 *   against `streamed` (into one buffer as it arrives, as it does now);
 *   growth is over VmHWM before reading; needs `parts` in the same run.
 * Prints each run's growth and seconds, and the ratios of each pair.
 * Usage: npm run build && node dist/bench/train-writes.js
 * (WIDTH, ROUNDS; MODES to pick some of memory,stream,concat,parts).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startEmbeddedS3 } from '#libs/embedded';
import { writeArtifact } from '#libs/federation';
import type { ObjectStorage } from '#libs/storage';
import {
  artifactLayout,
  exportArtifact,
  readCheckpointTensors,
  selectBackend,
  train,
  zipArtifact,
  type Checkpoint,
  type ExportOptions,
  type TaskOptions,
  type TrainedModel,
} from '#libs/training';

import { readCheckpoint } from '../apps/worker/src/training/checkpoint-codec';
import { benchStorage } from './services';
import { CUSTOMER_FEATURES, customerTable } from './training-data';

const WIDTH = Number(process.env.WIDTH ?? 2048);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const MODES = (
  process.env.MODES ?? 'memory,stream,concat,parts,joined,streamed'
).split(',');
const PAIRS = [
  ['memory', 'stream'],
  ['concat', 'parts'],
  ['joined', 'streamed'],
] as const;
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

/** A checkpoint stored as the child did (`concat`) or does (`parts`). */
async function storeCheckpoint(
  mode: string,
  storage: ObjectStorage,
  key: string,
  checkpoint: Checkpoint,
): Promise<number> {
  const json = Buffer.from(JSON.stringify(checkpoint.manifest));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  const data = Buffer.from(
    checkpoint.data.buffer,
    checkpoint.data.byteOffset,
    checkpoint.data.byteLength,
  );
  const size = head.length + json.length + data.length;
  if (mode === 'concat') {
    const bytes = Buffer.concat([head, json, data]);
    await storage.put(key, bytes, bytes.length);
  } else {
    await storage.putStream(key, Readable.from([head, json, data]), size);
  }

  return size;
}

/**
 * Reads back the last checkpoint a `parts` run stored, in a process that
 * trained nothing: whole and then copied (`joined`, as the child did) or
 * streamed into one buffer (`streamed`, as it does now), then as tensors.
 */
async function resume(mode: string, storage: ObjectStorage): Promise<void> {
  const key = (await storage.list('parts/')).at(-1)!;
  const before = peakMiB();
  const started = process.hrtime.bigint();
  let checkpoint: Checkpoint;
  if (mode === 'joined') {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.get(key)) {
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const length = bytes.readUInt32LE(0);
    checkpoint = {
      manifest: JSON.parse(bytes.toString('utf8', 4, 4 + length)),
      data: new Uint8Array(bytes.subarray(4 + length)),
    };
  } else {
    checkpoint = await readCheckpoint(await storage.get(key));
  }
  // As a resume uses it: a view (or copy) of every tensor.
  readCheckpointTensors(checkpoint);
  const out: ChildResult = {
    parameters: 0,
    growthMiB: peakMiB() - before,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    bytes: checkpoint.data.byteLength,
  };
  process.stdout.write(JSON.stringify(out));
}

async function child(mode: string, config: string): Promise<void> {
  const storage = benchStorage(config);
  if (mode === 'joined' || mode === 'streamed') {
    return resume(mode, storage);
  }
  await selectBackend({ prefer: ['wasm'] });
  const data = customerTable(512, 1);
  const checkpoints = mode === 'concat' || mode === 'parts';
  let bytes = 0;
  let writing = 0n;
  const startPeak = peakMiB();
  const result = await train({
    spec: {
      features: CUSTOMER_FEATURES,
      backbone: { kind: 'mlp', widths: [WIDTH, WIDTH, WIDTH] },
      tasks: TASKS,
    },
    data: { schema: data.schema, train: data.batches },
    epochs: checkpoints ? 2 : 1,
    batchSize: 256,
    recordSteps: false,
    onEpoch: async ({ epoch, checkpoint }) => {
      if (checkpoints) {
        const started = process.hrtime.bigint();
        bytes += await storeCheckpoint(
          mode,
          storage,
          `${mode}/epoch-${epoch}.ckpt`,
          checkpoint,
        );
        writing += process.hrtime.bigint() - started;
      }
    },
  });
  const before = checkpoints ? startPeak : peakMiB();
  const started = process.hrtime.bigint();
  if (!checkpoints) {
    bytes = await writeAll(mode, storage, result.model);
    writing = process.hrtime.bigint() - started;
  }
  const out: ChildResult = {
    parameters: result.model.training.countParams(),
    growthMiB: peakMiB() - before,
    seconds: Number(writing) / 1e9,
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
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-writes-'));
  const s3 = await startEmbeddedS3({ directory: dir, port: 0 });
  try {
    const storageConfig = JSON.stringify({
      endpoint: s3.endpoint,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
    });
    await benchStorage(storageConfig).ensureBucket();
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
      `${(first.parameters / 1e6).toFixed(2)}M parameters; ${ROUNDS} rounds`,
    );
    for (const [mode, runs] of Object.entries(results)) {
      console.log(
        `${mode.padEnd(7)} ${(runs[0].bytes / MiB).toFixed(0)} MiB; ` +
          `peak RSS growth ${runs.map((r) => r.growthMiB.toFixed(0)).join(', ')} MiB; ` +
          `${runs.map((r) => r.seconds.toFixed(2)).join(', ')} s`,
      );
    }
    const mean = (runs: ChildResult[], f: (r: ChildResult) => number) =>
      runs.reduce((n, r) => n + f(r), 0) / runs.length;
    for (const [old, now] of PAIRS) {
      if (results[old] && results[now]) {
        const growth = (m: string) => mean(results[m], (r) => r.growthMiB);
        const seconds = (m: string) => mean(results[m], (r) => r.seconds);
        console.log(
          `${now} / ${old}: peak RSS growth ` +
            `${(growth(now) / Math.max(1, growth(old))).toFixed(2)}, ` +
            `seconds ${(seconds(now) / seconds(old)).toFixed(2)}`,
        );
      }
    }
  } finally {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
