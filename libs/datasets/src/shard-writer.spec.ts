import { Readable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { inferDataset } from './infer';
import { bufferInput, type DatasetInput } from './input';
import { readShard, readShardDirectory, verifyShard } from './shard-format';
import { type Shard, writeShards } from './shard-writer';
import { pngBytes, zipOf } from './testing/fixtures';
import { parquetBytes } from './testing/parquet-writer';

async function ingest(bytes: Buffer, rowsPerShard: number, name = 'data.csv') {
  const input = bufferInput(bytes, name);
  const inference = await inferDataset(input);
  const shards: Shard[] = [];
  const manifest = await writeShards(input, {
    settings: inference.settings,
    schema: inference.schema,
    rowsPerShard,
    onShard: (shard) => {
      shards.push(shard);
    },
  });

  return { inference, manifest, shards };
}

describe('shards', () => {
  it('read back to exactly the parsed values', async () => {
    const csv =
      'x,n,flag,color,note\n' +
      '1.25,1,true,red,a\n' +
      ',2,false,blue,b\n' +
      '-3.5,,TRUE,,c\n' +
      '4,4,false,red,d\n' +
      '0.1,5,,green,e\n';
    const { inference, manifest, shards } = await ingest(Buffer.from(csv), 2);

    expect(inference.report.ok).toBe(true);
    expect(manifest).toMatchObject({
      format: 'chorus-shards',
      rowCount: 5,
      rowsPerShard: 2,
      columns: [
        { name: 'x', type: 'numeric' },
        { name: 'n', type: 'integer' },
        { name: 'flag', type: 'boolean' },
        {
          name: 'color',
          type: 'categorical',
          vocabulary: ['red', 'blue', 'green'],
        },
      ],
    });
    expect(
      manifest.shards.map((s) => [s.name, s.rowCount, s.firstRow]),
    ).toEqual([
      ['shard-00000.bin', 2, 0],
      ['shard-00001.bin', 2, 2],
      ['shard-00002.bin', 1, 4],
    ]);
    const batches = shards.map((s) =>
      readShard(s.bytes, { sha256: s.info.sha256 }),
    );
    const column = (name: string) =>
      batches.flatMap((b) => Array.from(b.columns[name]));

    expect(batches.map((b) => b.rowCount)).toEqual([2, 2, 1]);
    expect(column('x')).toEqual([1.25, NaN, -3.5, 4, Math.fround(0.1)]);
    expect(column('n')).toEqual([1, 2, NaN, 4, 5]);
    expect(column('flag')).toEqual([1, 0, 1, 0, NaN]);
    expect(column('color')).toEqual([0, 1, -1, 0, 2]);
    expect(batches[0].columns.note).toBeUndefined();
  });

  it('lists a checksum that catches a changed byte', async () => {
    const { shards } = await ingest(Buffer.from('a,b\n1,2\n3,4\n'), 10);
    const bytes = Buffer.from(shards[0].bytes);
    bytes[bytes.length - 1] ^= 1;

    expect(() =>
      verifyShard(shards[0].bytes, shards[0].info.sha256),
    ).not.toThrow();
    expect(() => verifyShard(bytes, shards[0].info.sha256)).toThrow(
      expect.objectContaining({ code: 'SHARD_CHECKSUM_MISMATCH' }),
    );
  });

  it('rejects bytes that are not a shard', () => {
    expect(() => readShardDirectory(Buffer.from('PAR1 not a shard'))).toThrow(
      expect.objectContaining({ code: 'SHARD_CORRUPT' }),
    );
  });

  it('reads views of unaligned bytes by copying them', async () => {
    const { shards } = await ingest(Buffer.from('a\n1.5\n2.5\n'), 10);
    const shifted = Buffer.alloc(shards[0].bytes.length + 1);
    shards[0].bytes.copy(shifted, 1);
    const batch = readShard(shifted.subarray(1));

    expect(Array.from(batch.columns.a)).toEqual([1.5, 2.5]);
  });

  it('stores images at the archive shape with their labels', async () => {
    const zip = await zipOf([
      { name: 'a/1.png', data: pngBytes(2, 2, (x) => [x * 100, 0, 0]) },
      { name: 'b/1.png', data: pngBytes(2, 2, () => [0, 0, 9]) },
    ]);
    const input = bufferInput(zip, 'images.zip');
    const inference = await inferDataset(input);
    const shards: Shard[] = [];
    await writeShards(input, {
      settings: inference.settings,
      schema: inference.schema,
      onShard: (s) => {
        shards.push(s);
      },
    });
    const batch = readShard(shards[0].bytes);

    expect(batch.rowCount).toBe(2);
    expect(Array.from(batch.columns.label)).toEqual([0, 1]);
    expect(Array.from(batch.columns.image)).toEqual([
      ...[0, 0, 0, 100, 0, 0, 0, 0, 0, 100, 0, 0],
      ...[0, 0, 9, 0, 0, 9, 0, 0, 9, 0, 0, 9],
    ]);
  });

  it('read back JSON Lines values', async () => {
    const text =
      '{"x": 0.5, "ok": true, "tag": "a"}\n' +
      '{"x": -2, "ok": false, "tag": "b"}\n' +
      '{"x": null, "ok": null, "tag": "a"}\n';
    const { shards } = await ingest(Buffer.from(text), 10, 'data.jsonl');
    const batch = readShard(shards[0].bytes);

    expect(Array.from(batch.columns.x)).toEqual([0.5, -2, NaN]);
    expect(Array.from(batch.columns.ok)).toEqual([1, 0, NaN]);
    expect(Array.from(batch.columns.tag)).toEqual([0, 1, 0]);
  });

  it('read back Parquet values', async () => {
    const file = parquetBytes(
      [
        { name: 'x', type: 'double', values: [1.5, null, -4] },
        { name: 'n', type: 'int64', values: [7, 8, 9] },
        { name: 'tag', type: 'string', values: ['u', 'v', 'u'] },
      ],
      2,
    );
    const { manifest, shards } = await ingest(file, 2, 'data.parquet');
    const column = (name: string) =>
      shards.flatMap((s) => Array.from(readShard(s.bytes).columns[name]));

    expect(manifest.rowCount).toBe(3);
    expect(column('x')).toEqual([1.5, NaN, -4]);
    expect(column('n')).toEqual([7, 8, 9]);
    expect(column('tag')).toEqual([0, 1, 0]);
  });

  it('hands out each shard before reading the rest of the file', async () => {
    const lines = ['a,b'];
    for (let i = 0; i < 50_000; i++) lines.push(`${i},${i % 3}`);
    const bytes = Buffer.from(lines.join('\n'));
    let read = 0;
    const input: DatasetInput = {
      open: () => {
        read = 0;

        return Readable.from(
          (function* () {
            for (let at = 0; at < bytes.length; at += 16 * 1024) {
              read = Math.min(at + 16 * 1024, bytes.length);
              yield bytes.subarray(at, at + 16 * 1024);
            }
          })(),
        );
      },
    };
    const inference = await inferDataset(input);
    const readAtShard: number[] = [];
    const manifest = await writeShards(input, {
      settings: inference.settings,
      schema: inference.schema,
      rowsPerShard: 5000,
      onShard: () => {
        readAtShard.push(read);
      },
    });

    expect(manifest.shards).toHaveLength(10);
    // The first shard (rows 1-5000) is out when about a tenth is read.
    expect(readAtShard[0]).toBeLessThan(bytes.length / 4);
  });
});
