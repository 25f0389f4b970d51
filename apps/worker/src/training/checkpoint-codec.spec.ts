import { describe, expect, it } from 'vitest';

import { readCheckpointTensors, writeCheckpoint } from '#libs/training';

import { checkpointParts, readCheckpoint } from './checkpoint-codec';

const state = {
  spec: '{}',
  epoch: 2,
  step: 10,
  optimizerIterations: 10,
  random: [1, 2, 3, 4],
  balancer: { kind: 'static' },
  history: { epochs: [] },
  best: null,
  wait: 0,
} as unknown as Parameters<typeof writeCheckpoint>[0];

describe('checkpoint codec', () => {
  it('reads tensors when their turn comes and reads the pieces back in any chunks', async () => {
    const read: string[] = [];
    const lazy = (name: string, values: number[]) => () => {
      read.push(name);

      return Float32Array.from(values);
    };
    const checkpoint = writeCheckpoint(state, [
      { name: 'weight/a', shape: [2], values: lazy('a', [1, 2]) },
      { name: 'slot/0', shape: [1, 3], values: lazy('s', [3, 4, 5]) },
      { name: 'best/a', shape: [2], values: Float32Array.from([6, 7]) },
    ]);

    const { parts, size } = checkpointParts(checkpoint);
    const bytes = Buffer.concat(parts);
    const inChunks = (n: number) =>
      (async function* () {
        for (let i = 0; i < bytes.length; i += n) {
          yield bytes.subarray(i, i + n);
        }
      })();

    expect(read).toEqual(['a', 's']);
    expect(bytes.length).toBe(size);
    for (const chunk of [1, 3, 7, bytes.length]) {
      const back = await readCheckpoint(inChunks(chunk));
      const tensors = readCheckpointTensors(back);
      expect(back.manifest.epoch, `chunks of ${chunk}`).toBe(2);
      expect(
        Object.fromEntries([...tensors].map(([n, t]) => [n, [...t.values]])),
      ).toEqual({ 'weight/a': [1, 2], 'slot/0': [3, 4, 5], 'best/a': [6, 7] });
    }
    const short = (async function* () {
      yield bytes.subarray(0, bytes.length - 1);
    })();
    const long = (async function* () {
      yield Buffer.concat([bytes, Buffer.alloc(4)]);
    })();
    await expect(readCheckpoint(short)).rejects.toThrow(/cut short/);
    await expect(readCheckpoint(long)).rejects.toThrow(/more bytes/);
  });

  it('refuses a tensor whose values do not fill its shape', () => {
    expect(() =>
      writeCheckpoint(state, [
        { name: 'weight/a', shape: [3], values: () => Float32Array.from([1]) },
      ]),
    ).toThrow(/weight\/a has 1 values; its shape \[3\] holds 3/);
  });
});
