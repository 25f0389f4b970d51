/**
 * How much memory `POST /v1/models/import` takes in the API: a tfjs layers
 * model of about WIDTH^2 x 4 x LAYERS bytes (default 2048 wide, 8 hidden
 * layers: 128 MiB), imported into an API process of its own, against a
 * `POST /v1/datasets` of the same bytes into another (a streamed upload).
 * Prints each process's peak RSS growth (VmHWM) over its idle peak, and
 * the ratio.
 * Usage: npm run build && node dist/bench/import.js
 */
import { readFileSync } from 'node:fs';

import * as tf from '@tensorflow/tfjs';

import { freePort, PlatformProcess, waitForReady } from '#libs/embedded';

import { layersModelFiles } from '../libs/training/src/testing/layers-files';
import { startBenchServices } from './services';

const WIDTH = Number(process.env.WIDTH ?? 2048);
const LAYERS = Number(process.env.LAYERS ?? 8);
const MiB = 1024 * 1024;

/** Peak resident memory of a process so far, in MiB. */
const peakMiB = (pid: number) =>
  Number(
    /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1],
  ) / 1024;

/** model.json text and weight bytes of a dense chain, weights random. */
async function layersModel() {
  const model = tf.sequential();
  for (let i = 0; i < LAYERS; i++) {
    model.add(
      tf.layers.dense({
        units: WIDTH,
        activation: 'relu',
        ...(i === 0 ? { inputShape: [WIDTH] } : {}),
      }),
    );
  }
  model.add(tf.layers.dense({ units: 1 }));
  const files = await layersModelFiles(model);
  model.dispose();

  return files;
}

/** Runs `request` against an API process of its own; its peak RSS growth. */
async function growth(
  env: NodeJS.ProcessEnv,
  request: (base: string) => Promise<Response>,
): Promise<number> {
  const port = await freePort();
  const api = new PlatformProcess('api', { ...env, PORT: String(port) });
  api.start();
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForReady(`${base}/health/ready`);
    await fetch(`${base}/health/ready`);
    const idle = peakMiB(api.pid!);
    const response = await request(base);
    if (!response.ok) {
      throw new Error(`${response.status}: ${await response.text()}`);
    }

    return peakMiB(api.pid!) - idle;
  } finally {
    await api.stop();
  }
}

async function main() {
  const services = await startBenchServices();
  try {
    const env = {
      ...services.env,
      IMPORT_MAX_BYTES: String(4096 * MiB),
    };
    const files = await layersModel();
    const auth = { Authorization: `Bearer ${services.adminKey}` };
    const upload = await growth(env, (base) =>
      fetch(`${base}/v1/datasets?name=bench.bin`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/octet-stream' },
        body: files.weights,
      }),
    );
    const imported = await growth(env, (base) => {
      const form = new FormData();
      form.append('name', 'bench');
      form.append('model', new Blob([files.modelJson]), 'model.json');
      form.append('weights', new Blob([files.weights]), 'weights.bin');

      return fetch(`${base}/v1/models/import`, {
        method: 'POST',
        headers: auth,
        body: form,
      });
    });
    const size = files.weights.length / MiB;
    console.log(`weights: ${size.toFixed(0)} MiB (${LAYERS} x ${WIDTH}^2)`);
    console.log(
      `API peak RSS growth, dataset upload: ${upload.toFixed(0)} MiB`,
    );
    console.log(
      `API peak RSS growth, model import:   ${imported.toFixed(0)} MiB`,
    );
    console.log(
      `import / upload: ${(imported / Math.max(upload, 1)).toFixed(2)}; ` +
        `import / weights size: ${(imported / size).toFixed(2)}`,
    );
  } finally {
    await services.stop();
  }
}

void main();
