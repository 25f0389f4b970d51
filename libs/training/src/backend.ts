import { createRequire } from 'node:module';
import * as path from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

import { registerWasmTrainingKernels } from './wasm-kernels';

/** A backend name tfjs knows: tensorflow (native), wasm or cpu. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendOptions {
  /**
   * Backends to try in order. Default: native TensorFlow (tfjs-node-gpu,
   * then tfjs-node, when installed), then wasm, then cpu.
   */
  prefer?: BackendName[];
}

export interface BackendChoice {
  /** The backend now active. */
  backend: BackendName;
  /** The native package that provided it, when native. */
  nativePackage?: string;
  /** Why each earlier choice was skipped. */
  skipped: { backend: BackendName; reason: string }[];
}

const load = createRequire(__filename);

function message(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

/**
 * Activates the fastest available backend and says which one ran. The
 * native packages are optional: they are loaded only when installed.
 */
export async function selectBackend(
  options: BackendOptions = {},
): Promise<BackendChoice> {
  const order = options.prefer ?? ['tensorflow', 'wasm', 'cpu'];
  const skipped: BackendChoice['skipped'] = [];
  for (const backend of order) {
    if (backend === 'tensorflow') {
      for (const name of [
        '@tensorflow/tfjs-node-gpu',
        '@tensorflow/tfjs-node',
      ]) {
        try {
          load(name);
          if (await tf.setBackend('tensorflow')) {
            return { backend, nativePackage: name, skipped };
          }
        } catch (error) {
          skipped.push({ backend, reason: `${name}: ${message(error)}` });
        }
      }
      continue;
    }
    if (backend === 'wasm') {
      try {
        const wasmFile = load.resolve(
          '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
        );
        setWasmPaths(path.dirname(wasmFile) + path.sep);
        if (await tf.setBackend('wasm')) {
          registerWasmTrainingKernels();

          return { backend, skipped };
        }
        skipped.push({ backend, reason: 'the wasm backend did not start.' });
      } catch (error) {
        skipped.push({ backend, reason: message(error) });
      }
      continue;
    }
    if (await tf.setBackend('cpu')) {
      return { backend, skipped };
    }
  }
  throw new Error(
    `No tfjs backend could start: ${skipped
      .map((s) => `${s.backend} (${s.reason})`)
      .join('; ')}.`,
  );
}
