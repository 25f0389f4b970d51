import { describe, expect, it } from 'vitest';

import { inferDataset } from './infer';
import { type IngestOptions, ingestDataset } from './ingest';
import { bufferInput } from './input';
import { type Shard, type ShardInfo, writeShards } from './shard-writer';
import type { SplitSpec } from './split';
import { pngBytes, zipOf } from './testing/fixtures';

const split: SplitSpec = {
  ratios: { train: 0.8, validation: 0.1, test: 0.1 },
  seed: 5,
  stratifyBy: 'color',
};

function csv(rows: number, value: (i: number) => string): Buffer {
  const lines = ['x,n,flag,color,id'];
  const colors = ['red', 'green', 'blue'];
  for (let i = 0; i < rows; i++) {
    lines.push(
      `${value(i)},${i % 7},${i % 2 === 0},${colors[(i * i) % 3]},id-${i}`,
    );
  }

  return Buffer.from(lines.join('\n'));
}

async function onePass(bytes: Buffer, options: Partial<IngestOptions> = {}) {
  const shards: Shard[] = [];
  const discarded: ShardInfo[][] = [];
  const result = await ingestDataset(bufferInput(bytes, 'data.csv'), {
    rowsPerShard: 16,
    probeRows: 10,
    split,
    onShard: (shard) => {
      shards.push(shard);
    },
    onDiscardShards: (infos) => {
      discarded.push(infos);
    },
    ...options,
  });

  return { result, shards, discarded };
}

async function twoPasses(bytes: Buffer) {
  const input = bufferInput(bytes, 'data.csv');
  const inference = await inferDataset(input);
  const shards: Shard[] = [];
  const manifest = await writeShards(input, {
    settings: inference.settings,
    schema: inference.schema,
    rowsPerShard: 16,
    split,
    onShard: (shard) => {
      shards.push(shard);
    },
  });

  return { inference, manifest, shards };
}

describe('ingestDataset', () => {
  it('writes in one pass the very shards two passes write', async () => {
    const bytes = csv(600, (i) => (i * 0.5 - 7).toString());
    const { result, shards, discarded } = await onePass(bytes);
    const reference = await twoPasses(bytes);

    expect(result.passes).toBe(1);
    expect(discarded).toEqual([]);
    expect(result.schema).toEqual(reference.inference.schema);
    expect(result.manifest).toEqual(reference.manifest);
    expect(shards.map((s) => s.bytes)).toEqual(
      reference.shards.map((s) => s.bytes),
    );
  });

  it('rewrites the shards when the first rows suggested another type', async () => {
    // Integers in the first rows (the CSV reader's first group of 255),
    // then decimals: integer became numeric.
    const bytes = csv(600, (i) => (i < 300 ? String(i) : `${i}.5`));
    const { result, shards, discarded } = await onePass(bytes);
    const reference = await twoPasses(bytes);

    expect(result.passes).toBe(2);
    expect(discarded).toHaveLength(1);
    expect(discarded[0].length).toBeGreaterThan(0);
    expect(result.manifest).toEqual(reference.manifest);
    // The first pass's shards came first, then the rewrite.
    expect(shards.slice(-reference.shards.length).map((s) => s.bytes)).toEqual(
      reference.shards.map((s) => s.bytes),
    );
  });

  it('rewrites when a vocabulary outgrows its limit', async () => {
    const lines = ['tag'];
    for (let i = 0; i < 600; i++) lines.push(i < 300 ? `t${i % 4}` : `t${i}`);
    const { result } = await onePass(Buffer.from(lines.join('\n')), {
      maxVocabulary: 50,
      split: undefined,
    });

    expect(result.schema.columns[0].type).toBe('text');
    expect(result.passes).toBe(2);
    expect(result.manifest?.columns).toEqual([]);
  });

  it('discards shards and writes no manifest when the report fails', async () => {
    const bytes = Buffer.concat([csv(60, String), Buffer.from('\n1,2\n')]);
    const { result, discarded } = await onePass(bytes);

    expect(result.report.ok).toBe(false);
    expect(result.manifest).toBeUndefined();
    expect(discarded).toHaveLength(1);
  });

  it('takes two passes for image archives', async () => {
    const zip = await zipOf([
      { name: 'a/1.png', data: pngBytes(2, 2, () => [1, 2, 3]) },
      { name: 'b/1.png', data: pngBytes(2, 2, () => [4, 5, 6]) },
    ]);
    const shards: Shard[] = [];
    const result = await ingestDataset(bufferInput(zip, 'x.zip'), {
      onShard: (s) => {
        shards.push(s);
      },
    });

    expect(result.passes).toBe(2);
    expect(result.manifest?.rowCount).toBe(2);
    expect(shards).toHaveLength(1);
  });
});
