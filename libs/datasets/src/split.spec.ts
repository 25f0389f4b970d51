import { describe, expect, it } from 'vitest';

import { inferDataset } from './infer';
import { bufferInput } from './input';
import { seededRandom as random } from './random';
import { readShard } from './shard-format';
import { type Shard, writeShards } from './shard-writer';
import {
  packSplitCodes,
  selectSplit,
  SplitAssigner,
  type SplitSpec,
  unpackSplitCodes,
  validateSplitSpec,
} from './split';

const spec: SplitSpec = {
  ratios: { train: 0.8, validation: 0.1, test: 0.1 },
  seed: 42,
};

function assign(keys: string[], s: SplitSpec = spec) {
  const assigner = new SplitAssigner(s);

  return Uint8Array.from(keys.map((k) => assigner.next(k)));
}

describe('splits', () => {
  it('repeat exactly for the same seed and differ for another', () => {
    const keys = new Array<string>(1000).fill('');
    const a = assign(keys);

    expect(assign(keys)).toEqual(a);
    expect(assign(keys, { ...spec, seed: 43 })).not.toEqual(a);
  });

  it('hit the ratios exactly in every block of ten rows', () => {
    const codes = assign(new Array<string>(1000).fill(''));
    const count = (code: number) => codes.filter((c) => c === code).length;

    // 1000 rows in blocks of 10, each block 8 train, 1 validation, 1 test.
    expect([count(0), count(1), count(2)]).toEqual([800, 100, 100]);
    expect(Array.from(codes.subarray(0, 10)).sort()).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 1, 2,
    ]);
  });

  it('keep each class at the ratios when stratified', () => {
    const next = random(3);
    // A rare class: 5% "b", 95% "a".
    const keys = Array.from({ length: 2000 }, () =>
      next() < 0.05 ? 'b' : 'a',
    );
    const codes = assign(keys, { ...spec, stratifyBy: 'label' });
    const rare = keys
      .map((k, i) => [k, codes[i]] as const)
      .filter(([k]) => k === 'b');
    const rareTest = rare.filter(([, c]) => c === 2).length;

    // Every complete block of 10 "b" rows gives exactly one to test.
    expect(rareTest).toBeGreaterThanOrEqual(Math.floor(rare.length / 10));
    expect(rareTest).toBeLessThanOrEqual(Math.ceil(rare.length / 10));
  });

  it('use the smallest block the ratios divide', () => {
    const codes = assign(new Array<string>(20).fill(''), {
      ratios: { train: 0.7, validation: 0.15, test: 0.15 },
      seed: 1,
    });

    expect([0, 1, 2].map((c) => codes.filter((x) => x === c).length)).toEqual([
      14, 3, 3,
    ]);
  });

  it('refuse ratios that do not add up to one', () => {
    expect(() =>
      validateSplitSpec({
        ratios: { train: 0.8, validation: 0.3, test: 0 },
        seed: 1,
      }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
  });

  it('refuse to stratify by a column the dataset lacks', async () => {
    const input = bufferInput(Buffer.from('x,label\n1,a\n2,b\n'));
    const inference = await inferDataset(input);

    await expect(
      writeShards(input, {
        settings: inference.settings,
        schema: inference.schema,
        split: { ...spec, stratifyBy: 'class' },
        onShard: () => undefined,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', column: 'class' });
  });

  it('pack to two bits a row and back', () => {
    const codes = Uint8Array.from([0, 1, 2, 0, 2, 2, 1]);

    expect(unpackSplitCodes(packSplitCodes(codes), codes.length)).toEqual(
      codes,
    );
  });

  it('are stored per shard and select rows of a batch', async () => {
    const lines = ['x,label'];
    for (let i = 0; i < 40; i++)
      lines.push(`${i},${i % 4 === 0 ? 'rare' : 'common'}`);
    const input = bufferInput(Buffer.from(lines.join('\n')));
    const inference = await inferDataset(input);
    const shards: Shard[] = [];
    const manifest = await writeShards(input, {
      settings: inference.settings,
      schema: inference.schema,
      rowsPerShard: 16,
      split: { ...spec, stratifyBy: 'label' },
      onShard: (s) => {
        shards.push(s);
      },
    });

    // 10 rare rows: 8/1/1; 30 common rows: 24 + 3/3 in three blocks.
    // "rare" comes first (row 0), so its code is 0.
    expect(manifest.split?.counts).toEqual({
      train: 32,
      validation: 4,
      test: 4,
    });
    const test = shards.map((s) =>
      selectSplit(
        readShard(s.bytes),
        unpackSplitCodes(s.info.split!, s.info.rowCount),
        'test',
      ),
    );
    const testX = test.flatMap((b) => Array.from(b.columns.x));
    expect(testX).toHaveLength(4);
    expect(
      test.flatMap((b) => Array.from(b.columns.label)).filter((c) => c === 0),
    ).toHaveLength(1);
  });
});
