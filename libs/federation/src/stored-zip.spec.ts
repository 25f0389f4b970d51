import { text } from 'node:stream/consumers';
import { crc32 } from 'node:zlib';

import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';

import { storedZip, type StoredZipEntry } from './stored-zip';

async function bytesOf(entries: StoredZipEntry[]): Promise<Buffer> {
  const zip = storedZip(entries);
  const chunks: Buffer[] = [];
  for await (const chunk of zip.stream) {
    chunks.push(chunk as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  // The size is promised before the first byte; it must hold.
  expect(bytes.length).toBe(zip.size);

  return bytes;
}

interface ReadEntry {
  name: string;
  crc32: number;
  compressionMethod: number;
  data: string;
}

/** Every entry of a zip, read by yauzl, which checks sizes and offsets. */
async function readZip(bytes: Buffer): Promise<ReadEntry[]> {
  const zip = await yauzl.fromBufferPromise(bytes, {
    lazyEntries: true,
    autoClose: false,
  });
  const listed = await new Promise<yauzl.Entry[]>((resolve, reject) => {
    const found: yauzl.Entry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      found.push(entry);
      zip.readEntry();
    });
    zip.on('end', () => resolve(found));
    zip.on('error', reject);
    zip.readEntry();
  });
  const entries: ReadEntry[] = [];
  for (const entry of listed) {
    const data = await text(await zip.openReadStreamPromise(entry));
    entries.push({
      name: entry.fileName,
      crc32: entry.crc32,
      compressionMethod: entry.compressionMethod,
      data,
    });
  }
  zip.close();

  return entries;
}

async function* pieces(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) {
    yield Buffer.from(part);
  }
}

describe('storedZip', () => {
  it('writes stored entries, in memory and streamed, that a zip reader takes', async () => {
    const bytes = await bytesOf([
      { name: 'model.json', data: Buffer.from('{"a":1}') },
      { name: 'weights.bin', data: pieces('abc', '', 'defgh'), size: 8 },
      { name: 'manifest.json', data: Buffer.from('{}') },
    ]);

    const entries = await readZip(bytes);

    expect(entries.map((e) => [e.name, e.data])).toEqual([
      ['model.json', '{"a":1}'],
      ['weights.bin', 'abcdefgh'],
      ['manifest.json', '{}'],
    ]);
    for (const entry of entries) {
      expect(entry.compressionMethod).toBe(0);
      expect(entry.crc32).toBe(crc32(Buffer.from(entry.data)));
    }
  });

  it('gives the same bytes for the same contents', async () => {
    const entries = () => [
      { name: 'a.bin', data: pieces('xy'), size: 2 },
      { name: 'b.json', data: Buffer.from('[]') },
    ];

    expect(await bytesOf(entries())).toEqual(await bytesOf(entries()));
  });

  it('fails the stream when a streamed entry is shorter or longer than its size', async () => {
    await expect(
      bytesOf([{ name: 'w.bin', data: pieces('abc'), size: 4 }]),
    ).rejects.toThrow('The zip entry w.bin gave 3 bytes; its size is 4.');
    await expect(
      bytesOf([{ name: 'w.bin', data: pieces('ab', 'cde'), size: 4 }]),
    ).rejects.toThrow('gave more than 4 bytes; its size is 4.');
  });

  it('refuses a streamed entry without a size and a non-ASCII name', () => {
    expect(() => storedZip([{ name: 'w.bin', data: pieces('a') }])).toThrow(
      'The zip entry w.bin needs its size in bytes.',
    );
    expect(() =>
      storedZip([{ name: 'wé.bin', data: Buffer.from('a') }]),
    ).toThrow('must be ASCII');
  });
});
