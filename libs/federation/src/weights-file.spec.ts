import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import type { NamedTensor, NamedWeights, WeightSpec } from './tensors';
import {
  encodeWeights,
  openWeightsStream,
  readWeightsStream,
  weightsHeader,
  WeightsFileWriter,
  writeWeightsStream,
} from './weights-file';

const weights: NamedWeights = new Map([
  [
    'backbone/dense_0/kernel',
    { shape: [2, 3], values: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  ],
  [
    'backbone/dense_0/bias',
    { shape: [3], values: Float32Array.from([7, 8, 9]) },
  ],
]);
const expected: WeightSpec[] = [
  { name: 'backbone/dense_0/kernel', shape: [2, 3] },
  { name: 'backbone/dense_0/bias', shape: [3] },
];

/** Delivers bytes in small chunks, as a network body would. */
const chunked = (bytes: Buffer, size = 5) =>
  Readable.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
      bytes.subarray(i * size, (i + 1) * size),
    ),
  );

async function readAll(bytes: Buffer, specs = expected) {
  const out: NamedTensor[] = [];
  for await (const tensor of readWeightsStream(chunked(bytes), specs)) {
    out.push(tensor);
  }

  return out;
}

const withHeader = (header: unknown, body = Buffer.alloc(0)) => {
  const json = Buffer.from(JSON.stringify(header));
  const preamble = Buffer.alloc(12);
  preamble.write('CHORUSW1', 0, 'latin1');
  preamble.writeUInt32LE(json.length, 8);

  return Buffer.concat([preamble, json, body]);
};

describe('weights file', () => {
  it('reads back what encodeWeights wrote, tensor by tensor', async () => {
    const back = await readAll(encodeWeights(weights));

    expect(back.map((t) => t.name)).toEqual(expected.map((s) => s.name));
    expect(Array.from(back[0].values)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(back[0].shape).toEqual([2, 3]);
    expect(Array.from(back[1].values)).toEqual([7, 8, 9]);
  });

  it('streams the same bytes as encodeWeights', async () => {
    const tensors = [...weights].map(([name, w]) => ({ name, ...w }));
    const chunks: Buffer[] = [];
    for await (const chunk of writeWeightsStream(expected, tensors)) {
      chunks.push(chunk as Buffer);
    }

    expect(Buffer.concat(chunks).equals(encodeWeights(weights))).toBe(true);
  });

  it('reads in blocks into the array given, never past a tensor', async () => {
    const reader = await openWeightsStream(chunked(encodeWeights(weights)));
    const block = new Float32Array(4);
    const parts: [string, number, number[]][] = [];
    for (;;) {
      const part = await reader.readPart(block);
      if (!part) {
        break;
      }
      // The values are the start of the block itself: no new array.
      expect(part.values.buffer).toBe(block.buffer);
      parts.push([part.spec.name, part.offset, Array.from(part.values)]);
    }

    expect(parts).toEqual([
      ['backbone/dense_0/kernel', 0, [1, 2, 3, 4]],
      ['backbone/dense_0/kernel', 4, [5, 6]],
      ['backbone/dense_0/bias', 0, [7, 8, 9]],
    ]);
  });

  it('refuses a whole read of a tensor that is partly read', async () => {
    const reader = await openWeightsStream(chunked(encodeWeights(weights)));
    await reader.readPart(new Float32Array(2));

    await expect(reader.read()).rejects.toThrow(
      'backbone/dense_0/kernel is partly read; read it on with readPart.',
    );
    await reader.close();
  });

  it('starts with the magic and a little-endian header length', () => {
    const header = weightsHeader(expected);

    expect(header.toString('latin1', 0, 8)).toBe('CHORUSW1');
    expect(header.readUInt32LE(8)).toBe(header.length - 12);
  });

  it('refuses a file that does not start with the magic', async () => {
    await expect(
      readAll(Buffer.from('PK\u0003\u0004 not weights')),
    ).rejects.toMatchObject({
      field: 'header',
      reason: expect.stringContaining('CHORUSW1'),
    });
  });

  it('refuses a header that is not JSON', async () => {
    const bytes = encodeWeights(weights);
    bytes.write('!', 12, 'latin1');

    await expect(readAll(bytes)).rejects.toMatchObject({
      field: 'header',
      reason: expect.stringContaining('not valid JSON'),
    });
  });

  it('refuses a header cut short', async () => {
    const bytes = encodeWeights(weights).subarray(0, 30);

    await expect(readAll(bytes)).rejects.toMatchObject({
      field: 'header',
      reason: expect.stringMatching(/^truncated/),
    });
  });

  it('names the tensor whose data is cut short', async () => {
    const bytes = encodeWeights(weights);

    await expect(
      readAll(bytes.subarray(0, bytes.length - 4)),
    ).rejects.toMatchObject({
      field: 'weights.backbone/dense_0/bias',
      reason: 'truncated: the tensor needs 12 bytes, 8 arrived.',
    });
  });

  it('refuses bytes after the last tensor', async () => {
    const bytes = Buffer.concat([encodeWeights(weights), Buffer.alloc(4)]);

    await expect(readAll(bytes)).rejects.toMatchObject({ field: 'body' });
  });

  it('names a tensor of the wrong shape with both shapes', async () => {
    const bytes = withHeader(
      {
        tensors: [
          { name: 'backbone/dense_0/kernel', shape: [3, 2], dtype: 'float32' },
          { name: 'backbone/dense_0/bias', shape: [3], dtype: 'float32' },
        ],
      },
      Buffer.alloc(36),
    );

    await expect(readAll(bytes)).rejects.toMatchObject({
      field: 'weights.backbone/dense_0/kernel',
      reason: 'shape [3,2], expected [2,3].',
    });
  });

  it('names a missing tensor and an unexpected one', async () => {
    const missing = withHeader({
      tensors: [
        { name: 'backbone/dense_0/kernel', shape: [2, 3], dtype: 'float32' },
      ],
    });
    const extra = withHeader({
      tensors: [
        ...expected.map((s) => ({ ...s, dtype: 'float32' })),
        { name: 'head/x/logits/bias', shape: [1], dtype: 'float32' },
      ],
    });

    await expect(readAll(missing)).rejects.toMatchObject({
      field: 'weights.backbone/dense_0/bias',
      reason: expect.stringMatching(/^missing/),
    });
    await expect(readAll(extra)).rejects.toMatchObject({
      field: 'weights.head/x/logits/bias',
      reason: expect.stringMatching(/^unexpected tensor/),
    });
  });

  it('refuses a dtype other than float32', async () => {
    const bytes = withHeader({
      tensors: [
        { name: 'backbone/dense_0/kernel', shape: [2, 3], dtype: 'int32' },
      ],
    });

    await expect(readAll(bytes)).rejects.toMatchObject({
      field: 'weights.backbone/dense_0/kernel',
      reason: 'dtype int32, expected float32.',
    });
  });

  it('fails a waiting write when the reader closes the stream', async () => {
    const size = 1 << 20;
    const writer = new WeightsFileWriter([{ name: 'big', shape: [size] }]);

    // 4 MiB is over the stream's buffer, so the write waits for a drain.
    const pending = writer.write(new Float32Array(size));
    writer.stream.destroy();

    await expect(pending).rejects.toThrow('closed by its reader');
  });
});
