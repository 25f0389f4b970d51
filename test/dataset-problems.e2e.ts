import { describe, expect, it } from 'vitest';

import {
  pngBytes,
  renameEntry,
  zipOf,
} from '../libs/datasets/src/testing/fixtures';
import {
  DatasetView,
  newProject,
  settledDataset,
  uploadDataset,
} from './support/client';

const png = (shade: number) => pngBytes(8, 8, () => [shade, shade, shade]);

/** A valid two-class image archive plus the given extra entries. */
const archive = (extra: { name: string; data: Buffer; mode?: number }[]) =>
  zipOf([
    { name: 'cat/1.png', data: png(10) },
    { name: 'cat/2.png', data: png(20) },
    { name: 'dog/1.png', data: png(200) },
    { name: 'dog/2.png', data: png(220) },
    ...extra,
  ]);

/** A CSV with one quoted field of `mib` MiB, generated as it is sent. */
function hugeFieldCsv(mib: number): ReadableStream<Uint8Array> {
  const block = Buffer.alloc(1024 * 1024, 'x');
  let sent = -1;

  return new ReadableStream({
    pull(controller) {
      if (sent === -1) {
        controller.enqueue(Buffer.from('id,text\n1,"'));
      } else if (sent < mib) {
        controller.enqueue(block);
      } else {
        controller.enqueue(Buffer.from('"\n2,short\n'));
        controller.close();
      }
      sent += 1;
    },
  });
}

interface Case {
  name: string;
  file: () => Promise<Buffer | ReadableStream<Uint8Array>>;
  code: string;
  /** Where the report must point, when the problem has a place. */
  at?: { row?: number; column?: string };
}

const text = (value: string) => async () => Buffer.from(value);

const cases: Case[] = [
  {
    name: 'an unterminated quote',
    file: text('a,b\n1,2\n3,"four\n5,6\n'),
    code: 'UNTERMINATED_QUOTE',
  },
  {
    name: 'ragged rows',
    file: text('a,b,c\n1,2,3\n4,5\n6,7,8\n'),
    code: 'RAGGED_ROW',
    at: { row: 2 },
  },
  {
    name: 'non-UTF-8 bytes',
    file: async () =>
      Buffer.concat([
        Buffer.from('a,b\n1,caf'),
        Buffer.from([0xe9]),
        Buffer.from('\n'),
      ]),
    code: 'INVALID_UTF8',
  },
  {
    name: 'duplicate headers',
    file: text('id,score,score\n1,2,3\n'),
    code: 'DUPLICATE_HEADER',
    at: { column: 'score' },
  },
  {
    name: 'an empty header',
    file: text('id,,c\n1,2,3\n'),
    code: 'EMPTY_HEADER',
  },
  { name: 'a header-only file', file: text('a,b,c\n'), code: 'HEADER_ONLY' },
  { name: 'an empty file', file: text(''), code: 'EMPTY_FILE' },
  {
    name: 'one 100 MB field',
    file: async () => hugeFieldCsv(100),
    code: 'RECORD_TOO_LARGE',
  },
  {
    name: 'NaN, Inf and 1e999 in a numeric column',
    file: text('x,y\n1,2.5\n2,NaN\n3,Inf\n4,1e999\n5,3.5\n'),
    code: 'NON_FINITE_NUMBER',
    at: { column: 'y' },
  },
  {
    name: 'a zip bomb',
    file: () =>
      archive([{ name: 'cat/bomb.png', data: Buffer.alloc(40 * 1024 * 1024) }]),
    code: 'ARCHIVE_RATIO',
  },
  {
    name: 'an entry with ../',
    file: async () =>
      renameEntry(
        await archive([{ name: 'cat/xx.png', data: png(30) }]),
        'cat/xx.png',
        '../cat.png',
      ),
    code: 'UNSAFE_PATH',
  },
  {
    name: 'an absolute entry path',
    file: async () =>
      renameEntry(
        await archive([{ name: 'cat/xx.png', data: png(30) }]),
        'cat/xx.png',
        '/tmp/x.png',
      ),
    code: 'UNSAFE_PATH',
  },
  {
    name: 'a backslash in an entry path',
    file: async () =>
      renameEntry(
        await archive([{ name: 'cat/xx.png', data: png(30) }]),
        'cat/xx.png',
        'cat\\xx.png',
      ),
    code: 'UNSAFE_PATH',
  },
  {
    name: 'a symlink entry',
    file: () =>
      archive([
        {
          name: 'cat/link.png',
          data: Buffer.from('/etc/passwd'),
          mode: 0o120777,
        },
      ]),
    code: 'SYMLINK_ENTRY',
  },
  {
    name: 'a nested archive',
    file: async () =>
      archive([
        {
          name: 'cat/more.zip',
          data: await zipOf([{ name: 'a/1.png', data: png(1) }]),
        },
      ]),
    code: 'NESTED_ARCHIVE',
  },
  {
    name: 'a non-image file in an image archive',
    file: () =>
      archive([
        { name: 'dog/notes.txt', data: Buffer.from('just some notes') },
      ]),
    code: 'NOT_AN_IMAGE',
  },
  {
    name: 'a corrupt image',
    file: () =>
      archive([{ name: 'dog/broken.png', data: png(50).subarray(0, 60) }]),
    code: 'CORRUPT_IMAGE',
  },
];

describe('datasets with problems', () => {
  it.each(cases)(
    'fails $name with $code, and writes no shards',
    async ({ file, code, at, name }) => {
      const project = await newProject();

      const upload = await uploadDataset(project.key, name, await file());
      const dataset: DatasetView = await settledDataset(
        project.key,
        String(upload.body.id),
      );

      expect(upload.status).toBe(201);
      expect(dataset.status).toBe('FAILED');
      expect(dataset.shardCount ?? 0).toBe(0);
      const problem = dataset.report!.problems.find((p) => p.code === code);
      expect(
        problem,
        JSON.stringify(dataset.report!.problems.map((p) => p.code)),
      ).toBeDefined();
      expect(problem!.severity).toBe('error');
      expect(problem!.message.length).toBeGreaterThan(10);
      if (at) {
        expect(problem).toMatchObject(at);
      }
    },
  );

  it('reads a clean image archive as an image column and a label', async () => {
    const project = await newProject();

    const upload = await uploadDataset(
      project.key,
      'pets.zip',
      await archive([]),
    );
    const dataset = await settledDataset(project.key, String(upload.body.id));

    expect(dataset.status).toBe('READY');
    expect(dataset.format).toBe('images');
    expect(dataset.rowCount).toBe(4);
    expect(dataset.schema!.columns.map((c) => c.type).sort()).toEqual([
      'categorical',
      'image',
    ]);
  });
});
