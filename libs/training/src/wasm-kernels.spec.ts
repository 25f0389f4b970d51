import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { selectBackend } from './backend';

async function filterGradient(backend: 'cpu' | 'wasm'): Promise<number[]> {
  await selectBackend({ prefer: [backend] });

  return tf.tidy(() => {
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 1);
    const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2);
    const gradient = tf.grad((f: tf.Tensor) =>
      tf.sum(
        tf.square(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same')),
      ),
    )(filter);

    return Array.from(gradient.dataSync());
  });
}

describe('wasm training kernels', () => {
  it('compute the conv2d filter gradient as the cpu backend does', async () => {
    const cpu = await filterGradient('cpu');
    const wasm = await filterGradient('wasm');

    expect(wasm).toHaveLength(cpu.length);
    wasm.forEach((v, i) => expect(v).toBeCloseTo(cpu[i], 2));
  });

  it('multiply transposed operands as the cpu backend does', async () => {
    const product = async (backend: 'cpu' | 'wasm') => {
      await selectBackend({ prefer: [backend] });

      return tf.tidy(() => {
        const a = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 3);
        const b = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 4);

        return [
          tf.matMul(a, b, true, true),
          tf.matMul(a.reshape([10, 3]), b.reshape([10, 4]), true, false),
          tf.matMul(b.reshape([10, 4]), a.reshape([3, 10]), true, true),
        ].map((t) => Array.from(t.dataSync()));
      });
    };
    const cpu = await product('cpu');
    const wasm = await product('wasm');

    cpu.forEach((values, i) =>
      values.forEach((v, j) => expect(wasm[i][j]).toBeCloseTo(v, 4)),
    );
    expect(tf.memory().numTensors).toBe(0);
  });
});
