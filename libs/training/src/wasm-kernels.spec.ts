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
});
