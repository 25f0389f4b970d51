/**
 * Merges 8 versions of a ~5 million parameter model (an MLP 3 -> 6 x 1024 ->
 * head, about 20 MB of weights each) stored in S3, and compares the wall time
 * of mergeArtifacts with streaming the same 8 objects from storage and
 * throwing the bytes away. The embedded S3 server runs in a child process of
 * its own, so both measurements talk to the same out-of-process server, and
 * each measurement runs in another process, so its peak RSS
 * (process.memoryUsage().rss sampled every 10 ms) is its own.
 *
 *   npm run build && node dist/bench/merge.js
 *   ROUNDS=1 PROFILE_DIR=/tmp/merge-prof node dist/bench/merge.js
 *   MODES=read,fedavg ROUNDS=9 node dist/bench/merge.js
 *   PIN=1 node dist/bench/merge.js
 *
 * PIN=1 (Linux, taskset) keeps the S3 server on CPU 1 and the measured
 * process on CPU 0, as if storage ran on a machine of its own; without it,
 * on a machine of two cores, the server and the client share both and the
 * ratio is that of their summed CPU time.
 *
 * Each run's process does its work once to warm up (compiling the code,
 * opening connections), as a worker that has merged before would be, then
 * REPEAT more times (default 3); its figure is the median of those. The
 * first, cold time is printed beside it.
 *
 * Goal: merge / read <= 1.5, and memory bounded by a few tensors.
 *
 * Two more runs split the merge's time: `tensors` opens the 8 artifacts and
 * reads every tensor, in lockstep as the merge does, and throws them away;
 * `write` writes one merged-size artifact from values held in memory.
 */
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startEmbeddedS3 } from '#libs/embedded';
import {
  mergeArtifacts,
  openArtifactWeights,
  readArtifactMetadata,
  writeArtifact,
  type MergeStrategy,
} from '#libs/federation';
import type { ObjectStorage } from '#libs/storage';
import {
  exportArtifact,
  selectBackend,
  train,
  zipArtifact,
} from '#libs/training';

import { tabularDataset } from '../libs/training/src/testing/synthetic';
import { benchStorage } from './services';

const MIB = 1024 * 1024;
const VERSIONS = 8;
const WIDTHS = [1024, 1024, 1024, 1024, 1024, 1024];
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const REPEAT = Number(process.env.REPEAT ?? 3);
const MODES = process.env.MODES?.split(',') ?? [
  'read',
  'tensors',
  'write',
  'fedavg',
  'median',
];
/** With PROFILE_DIR set, the merge processes write CPU profiles there. */
const PROFILE_DIR = process.env.PROFILE_DIR;

interface ChildResult {
  mode: string;
  /** Median of the warm repetitions. */
  seconds: number;
  /** The first, cold run. */
  coldSeconds: number;
  bytesRead: number;
  startRssMib: number;
  peakRssMib: number;
  peakTensorMib?: number;
  outputMib?: number;
  /** CPU seconds (user + system) of this process per warm repetition. */
  cpuSeconds: number;
  /** CPU seconds of the S3 server while the run's process lived. */
  serverCpuSeconds?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;

  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const keyOf = (k: number) => `versions/v${k}.zip`;

async function child(mode: string, config: string): Promise<void> {
  const storage = benchStorage(config);
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 10);
  const result: ChildResult = {
    mode,
    seconds: 0,
    coldSeconds: 0,
    bytesRead: 0,
    startRssMib: startRss / MIB,
    peakRssMib: 0,
    cpuSeconds: 0,
  };
  const timed = async () => {
    const started = process.hrtime.bigint();
    await runOnce(storage, mode, result);

    return Number(process.hrtime.bigint() - started) / 1e9;
  };
  result.coldSeconds = await timed();
  const cpuBefore = process.cpuUsage();
  const seconds: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    seconds.push(await timed());
  }
  const cpu = process.cpuUsage(cpuBefore);
  result.seconds = median(seconds);
  result.cpuSeconds = (cpu.user + cpu.system) / 1e6 / REPEAT;
  clearInterval(sampler);
  result.peakRssMib = Math.max(peakRss, process.memoryUsage.rss()) / MIB;
  process.stdout.write(JSON.stringify(result));
}

/** Does the work of one mode once, noting its figures in `result`. */
async function runOnce(
  storage: ObjectStorage,
  mode: string,
  result: ChildResult,
): Promise<void> {
  if (mode === 'read') {
    const sizes = await Promise.all(
      Array.from({ length: VERSIONS }, async (_, k) => {
        let bytes = 0;
        for await (const chunk of await storage.get(keyOf(k))) {
          bytes += (chunk as Buffer).length;
        }

        return bytes;
      }),
    );
    result.bytesRead = sizes.reduce((a, b) => a + b, 0);
  } else if (mode === 'tensors') {
    const readers = await Promise.all(
      Array.from({ length: VERSIONS }, (_, k) =>
        openArtifactWeights(storage, keyOf(k)),
      ),
    );
    result.bytesRead = 0;
    for (;;) {
      const tensors = await Promise.all(readers.map((r) => r.read()));
      if (!tensors[0]) {
        break;
      }
      tensors.forEach((t) => (result.bytesRead += t!.values.byteLength));
    }
  } else if (mode === 'write') {
    const meta = await readArtifactMetadata(storage, keyOf(0));
    const stored = await writeArtifact(storage, {
      key: 'written.zip',
      modelJson: meta.modelJson,
      manifest: meta.manifest,
      specs: meta.specs,
      values: (async function* () {
        for (const spec of meta.specs) {
          yield new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
        }
      })(),
    });
    result.outputMib = stored.sizeBytes / MIB;
  } else {
    const merged = await mergeArtifacts(storage, {
      sources: Array.from({ length: VERSIONS }, (_, k) => ({
        key: keyOf(k),
        sampleCount: 1000 + k,
      })),
      strategy: mode as MergeStrategy,
      outputKey: `merged-${mode}.zip`,
    });
    result.peakTensorMib = merged.peakTensorBytes / MIB;
    result.outputMib = merged.sizeBytes / MIB;
  }
}

/** Child mode: serve S3 until the parent goes away. */
async function serveS3(directory: string) {
  const s3 = await startEmbeddedS3({ directory, port: 0 });
  process.send!({
    endpoint: s3.endpoint,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
  });
  process.on('message', () => process.send!(process.cpuUsage()));
  process.on('disconnect', () => void s3.stop().then(() => process.exit(0)));
}

interface S3Process {
  /** JSON of endpoint, accessKey and secretKey. */
  config: string;
  /** CPU seconds (user + system) the server has spent so far. */
  cpuSeconds: () => Promise<number>;
  stop: () => void;
}

function forkS3(directory: string): Promise<S3Process> {
  const server = fork(__filename, ['--s3-server', directory], {
    execArgv: PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}/s3`]
      : [],
  });

  if (process.env.PIN) {
    execFile('taskset', ['-a', '-cp', '1', String(server.pid)]);
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('message', (message) =>
      resolve({
        config: JSON.stringify(message),
        cpuSeconds: () =>
          new Promise((answer) => {
            server.once('message', (usage: NodeJS.CpuUsage) =>
              answer((usage.user + usage.system) / 1e6),
            );
            server.send('cpu');
          }),
        stop: () => server.disconnect(),
      }),
    );
  });
}

/** Trains the model for one step and stores 8 perturbed versions of it. */
async function storeVersions(storage: ObjectStorage): Promise<number> {
  await selectBackend({ prefer: ['wasm', 'cpu'] });
  const data = tabularDataset(32, 1);
  const trained = await train({
    spec: {
      features: ['x1', 'x2', 'x3'],
      backbone: { kind: 'mlp', widths: WIDTHS },
      tasks: [{ name: 'buys', kind: 'binary', target: 'buys' }],
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 1,
    recordSteps: false,
  });
  const artifact = await exportArtifact(trained.model);
  trained.model.dispose();
  const base = new Float32Array(artifact.weights.slice().buffer);
  for (let k = 0; k < VERSIONS; k++) {
    const values = base.map((v, i) => v * (1 + 0.01 * k) + 1e-4 * (i % 7));
    const bytes = await zipArtifact({
      ...artifact,
      weights: new Uint8Array(values.buffer),
    });
    await storage.put(keyOf(k), bytes, bytes.length, 'application/zip');
  }

  return base.length;
}

async function main() {
  const [flag, mode, childConfig] = process.argv.slice(2);
  if (!MODES.includes('read')) {
    throw new Error('MODES must include read, the measure of the others.');
  }
  if (flag === '--child') {
    return child(mode, childConfig);
  }
  if (flag === '--s3-server') {
    return serveS3(mode);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-merge-'));
  const s3 = await forkS3(dir);
  const { config } = s3;
  const storage = benchStorage(config);
  await storage.ensureBucket();
  const parameters = await storeVersions(storage);
  const spawn = (childMode: string): Promise<ChildResult> =>
    new Promise((resolve, reject) => {
      const profile = PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`]
        : [];
      const argv = [...profile, __filename, '--child', childMode, config];
      execFile(
        process.env.PIN ? 'taskset' : process.execPath,
        process.env.PIN ? ['-c', '0', process.execPath, ...argv] : argv,
        { maxBuffer: MIB },
        (error, stdout, stderr) => {
          process.stderr.write(stderr);
          if (error) {
            reject(error);
          } else {
            resolve(JSON.parse(stdout) as ChildResult);
          }
        },
      );
    });
  const run = async (childMode: string): Promise<ChildResult> => {
    const serverBefore = await s3.cpuSeconds();
    const result = await spawn(childMode);
    result.mode = childMode;
    result.serverCpuSeconds =
      ((await s3.cpuSeconds()) - serverBefore) / (REPEAT + 1);

    return result;
  };

  console.log(
    `${VERSIONS} versions of ${(parameters / 1e6).toFixed(2)}M parameters ` +
      `(${((parameters * 4) / MIB).toFixed(1)} MiB of weights each), ` +
      `${ROUNDS} rounds of one process per run, each warm-up + ${REPEAT}; ` +
      'medians over rounds, best round in brackets',
  );
  // Rounds alternate the runs so that load from elsewhere hits all alike.
  const results = new Map<string, ChildResult[]>(MODES.map((m) => [m, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      const result = await run(mode);
      if (process.env.VERBOSE) {
        console.error(JSON.stringify(result));
      }
      results.get(mode)!.push(result);
    }
  }
  const reads = results.get('read')!;
  const table = [
    [
      'run',
      'warm s',
      'warm / read',
      'cold s',
      'cold / read',
      'CPU s',
      'S3 CPU s',
      'RSS peak MiB',
      'peakTensor MiB',
    ],
  ];
  for (const mode of MODES) {
    const rows = results.get(mode)!;
    // Each round's ratio is against the read of the same round.
    const figure = (pick: (row: ChildResult, round: number) => number) => {
      const values = rows.map(pick);

      return `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)})`;
    };
    table.push([
      mode,
      figure((r) => r.seconds),
      figure((r, i) => r.seconds / reads[i].seconds),
      figure((r) => r.coldSeconds),
      figure((r, i) => r.coldSeconds / reads[i].coldSeconds),
      median(rows.map((r) => r.cpuSeconds)).toFixed(2),
      median(rows.map((r) => r.serverCpuSeconds ?? 0)).toFixed(2),
      Math.max(...rows.map((r) => r.peakRssMib)).toFixed(0),
      rows[0].peakTensorMib?.toFixed(1) ?? '-',
    ]);
  }
  const widths = table[0].map((_, c) =>
    Math.max(...table.map((row) => row[c].length)),
  );
  for (const row of table) {
    console.log(row.map((cell, c) => cell.padStart(widths[c])).join(' | '));
  }
  s3.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
