import { describe, expect, it } from 'vitest';

import { inferDataset, type InferOptions } from './infer';
import { bufferInput } from './input';
import { openTable } from './open-table';
import { DEFAULT_LIMITS } from './table';
import {
  jpegBytes,
  pngBytes,
  renameEntry,
  zipOf,
  type ZipEntrySpec,
} from './testing/fixtures';

const red = pngBytes(4, 4, () => [255, 0, 0]);
const gray = (v: number) => pngBytes(4, 4, () => [v, v, v]);

async function inferZip(zip: Buffer, options: InferOptions = {}) {
  return inferDataset(bufferInput(zip, 'images.zip'), options);
}

async function zipWithBadEntry(extra: ZipEntrySpec) {
  return zipOf([
    { name: 'cats/1.png', data: red },
    { name: 'dogs/1.png', data: gray(10) },
    extra,
  ]);
}

function first(result: Awaited<ReturnType<typeof inferDataset>>) {
  return result.report.problems[0];
}

describe('image archives', () => {
  it('reads class folders under a wrapper folder', async () => {
    const zip = await zipOf([
      { name: 'pets/cats/1.png', data: red },
      { name: 'pets/cats/2.png', data: red },
      { name: 'pets/cats/3.png', data: red },
      { name: 'pets/dogs/1.jpg', data: jpegBytes(8, 8, 1) },
      { name: 'pets/dogs/2.jpg', data: jpegBytes(8, 8, 2) },
    ]);
    const result = await inferZip(zip);

    expect(result.report).toEqual({ ok: true, problems: [] });
    expect(result.settings).toMatchObject({
      format: 'images',
      imageShape: { height: 4, width: 4, channels: 3 },
    });
    const [image, label] = result.schema.columns;
    expect(image).toMatchObject({
      name: 'image',
      type: 'image',
      image: { height: 4, width: 4, channels: 3 },
      statistics: { count: 5, missing: 0, min: 0, max: 255 },
    });
    expect(label).toMatchObject({
      type: 'categorical',
      vocabulary: ['cats', 'dogs'],
      statistics: {
        top: [
          { value: 'cats', count: 3 },
          { value: 'dogs', count: 2 },
        ],
      },
    });
  });

  it('decodes pixels exactly and keeps grayscale archives at one channel', async () => {
    const zip = await zipOf([
      { name: 'a/1.png', data: gray(10) },
      { name: 'b/1.png', data: gray(200) },
    ]);
    const result = await inferZip(zip);

    expect(result.schema.columns[0].image).toEqual({
      height: 4,
      width: 4,
      channels: 1,
    });
    // 16 pixels at 10 and 16 at 200: mean 105, std 95.
    expect(result.schema.columns[0].statistics).toMatchObject({
      mean: 105,
      std: 95,
    });
    const table = await openTable(bufferInput(zip), result.settings, {
      limits: DEFAULT_LIMITS,
    });
    const rows = [];
    for await (const batch of table.batches) rows.push(...batch.rows);
    expect(rows[1][0]).toMatchObject({
      channels: 1,
      pixels: new Uint8Array(16).fill(200),
    });
    expect(rows[1][1]).toBe('b');
  });

  it('resizes every image to the shape it is given', async () => {
    const zip = await zipOf([
      { name: 'a/1.png', data: pngBytes(8, 6, () => [0, 0, 255]) },
    ]);
    const result = await inferZip(zip, {
      settings: { imageShape: { height: 3, width: 4, channels: 3 } },
    });

    expect(result.schema.columns[0].image).toEqual({
      height: 3,
      width: 4,
      channels: 3,
    });
    expect(result.sample[0].image).toBe('image 3x4x3');
  });
});

describe('bad image archives', () => {
  it('reports an entry that climbs out with ../', async () => {
    const zip = renameEntry(
      await zipWithBadEntry({ name: 'cats/xx/2.png', data: red }),
      'cats/xx/2.png',
      'cats/../2.png',
    );
    const result = await inferZip(zip);

    expect(result.report.ok).toBe(false);
    expect(first(result)).toMatchObject({
      code: 'UNSAFE_PATH',
      examples: [{ entry: 'cats/../2.png' }],
    });
  });

  it('reports absolute paths and backslashes', async () => {
    let zip = await zipOf([
      { name: 'cats/1.png', data: red },
      { name: 'xetc/a.png', data: red },
      { name: 'dogs/b.png', data: red },
    ]);
    zip = renameEntry(zip, 'xetc/a.png', '/etc/a.png');
    zip = renameEntry(zip, 'dogs/b.png', 'dogs\\b.png');
    const result = await inferZip(zip);
    const unsafe = result.report.problems.find((p) => p.code === 'UNSAFE_PATH');

    expect(unsafe).toMatchObject({
      count: 2,
      examples: [{ entry: '/etc/a.png' }, { entry: 'dogs\\b.png' }],
    });
  });

  it('reports symlink entries', async () => {
    const zip = await zipWithBadEntry({
      name: 'cats/link.png',
      data: Buffer.from('../../etc/passwd'),
      mode: 0o120777,
    });
    const result = await inferZip(zip);

    expect(first(result)).toMatchObject({
      code: 'SYMLINK_ENTRY',
      examples: [{ entry: 'cats/link.png' }],
    });
  });

  it('reports nested archives', async () => {
    const inner = await zipOf([{ name: 'cats/1.png', data: red }]);
    const zip = await zipWithBadEntry({ name: 'cats/more.zip', data: inner });
    const result = await inferZip(zip);

    expect(first(result)).toMatchObject({
      code: 'NESTED_ARCHIVE',
      examples: [{ row: 3, entry: 'cats/more.zip' }],
    });
  });

  it('reports files that are not images and images that are corrupt', async () => {
    const broken = Buffer.from(red);
    broken[broken.length - 20] ^= 0xff; // inside IDAT: the CRC no longer matches
    const zip = await zipOf([
      { name: 'cats/1.png', data: red },
      { name: 'cats/notes.txt', data: Buffer.from('hello') },
      { name: 'cats/2.png', data: broken },
      { name: 'dogs/3.jpg', data: Buffer.from('not a jpeg at all') },
      { name: 'readme.png', data: red },
    ]);
    const result = await inferZip(zip);
    const found = result.report.problems.map((p) => [p.code, p.examples[0]]);

    expect(found).toEqual(
      expect.arrayContaining([
        ['NOT_AN_IMAGE', { row: 2, entry: 'cats/notes.txt' }],
        ['CORRUPT_IMAGE', { row: 3, entry: 'cats/2.png' }],
        ['ARCHIVE_LAYOUT', { entry: 'readme.png' }],
      ]),
    );
    const corrupt = result.report.problems.find(
      (p) => p.code === 'CORRUPT_IMAGE',
    );
    expect(corrupt?.count).toBe(2);
    expect(result.schema.rowCount).toBe(1);
  });

  it('stops a zip bomb while inflating, by ratio', async () => {
    const zeros = Buffer.alloc(50 * 1024 * 1024);
    const zip = await zipWithBadEntry({ name: 'cats/bomb.png', data: zeros });
    expect(zip.length).toBeLessThan(1024 * 1024);
    const result = await inferZip(zip);

    expect(first(result)).toMatchObject({
      code: 'ARCHIVE_RATIO',
      examples: [{ entry: 'cats/bomb.png' }],
    });
  });

  it('does not trust the size an entry declares', async () => {
    const zip = await zipWithBadEntry({
      name: 'cats/liar.png',
      data: Buffer.alloc(4 * 1024 * 1024),
    });
    // Central directory record of the third entry: declare 100 bytes.
    const signature = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
    let at = -1;
    for (let i = 0; i < 3; i++) at = zip.indexOf(signature, at + 1);
    zip.writeUInt32LE(100, at + 24);
    const result = await inferZip(zip);

    expect(first(result)).toMatchObject({
      code: 'ARCHIVE_SIZE_MISMATCH',
      examples: [{ entry: 'cats/liar.png' }],
    });
  });

  it('stops when the total inflated size passes its cap', async () => {
    const entries = [1, 2, 3, 4].map((i) => ({
      name: `cats/${i}.png`,
      data: jpegBytes(16, 16, i),
    }));
    const total = entries.reduce((sum, e) => sum + e.data.length, 0);
    const result = await inferZip(await zipOf(entries), {
      limits: { maxInflatedBytes: total - 10 },
    });

    expect(first(result)).toMatchObject({
      code: 'ARCHIVE_TOO_LARGE',
      examples: [{ entry: 'cats/4.png' }],
    });
  });

  it('refuses an archive with too many entries', async () => {
    const entries = [1, 2, 3, 4, 5].map((i) => ({
      name: `cats/${i}.png`,
      data: red,
    }));
    const result = await inferZip(await zipOf(entries), {
      limits: { maxArchiveEntries: 3 },
    });

    expect(first(result)).toMatchObject({ code: 'ARCHIVE_TOO_MANY_ENTRIES' });
  });

  it('reports a truncated archive', async () => {
    const zip = await zipOf([{ name: 'cats/1.png', data: red }]);
    const result = await inferZip(zip.subarray(0, zip.length - 30));

    expect(first(result)).toMatchObject({ code: 'INVALID_ARCHIVE' });
  });

  it('reports a truncated JPEG and a PNG that claims a huge size', async () => {
    const jpeg = jpegBytes(32, 32, 5);
    const huge = Buffer.from(red);
    huge.writeUInt32BE(100_000, 16); // IHDR width
    huge.writeUInt32BE(100_000, 20); // IHDR height
    const zip = await zipOf([
      { name: 'cats/1.png', data: red },
      { name: 'cats/2.jpg', data: jpeg.subarray(0, jpeg.length >> 1) },
      { name: 'dogs/3.png', data: huge },
    ]);
    const result = await inferZip(zip);
    const found = result.report.problems.map((p) => [p.code, p.examples[0]]);

    expect(found).toEqual([
      ['CORRUPT_IMAGE', { row: 2, entry: 'cats/2.jpg' }],
      ['IMAGE_TOO_LARGE', { row: 3, entry: 'dogs/3.png' }],
    ]);
  });

  it('tells an Excel workbook from an image archive', async () => {
    const zip = await zipOf([
      { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
      { name: 'xl/workbook.xml', data: Buffer.from('<workbook/>') },
    ]);
    const result = await inferDataset(bufferInput(zip, 'sales.xlsx'));

    expect(result.report.problems.map((p) => p.code)).toEqual([
      'UNKNOWN_FORMAT',
    ]);
  });
});
