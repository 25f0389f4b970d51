import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

import { ZIP } from './zip-format';

/** One entry of a {@link storedZip}. */
export interface StoredZipEntry {
  /** Path in the archive (ASCII). */
  name: string;
  /** The bytes: in memory, or a stream of exactly `size` bytes. */
  data: Buffer | AsyncIterable<Uint8Array>;
  /** Needed for streams; a buffer's own length otherwise. */
  size?: number;
}

/** A zip being written: its size in bytes and the bytes. */
export interface StoredZip {
  size: number;
  stream: Readable;
}

const {
  localHeaderBytes: LOCAL_HEADER,
  dataDescriptorBytes: DATA_DESCRIPTOR,
  centralHeaderBytes: CENTRAL_HEADER,
  endOfCentralDirectoryBytes: END_OF_CENTRAL_DIRECTORY,
  flagDataDescriptor: FLAG_DATA_DESCRIPTOR,
} = ZIP;
const VERSION = 20;
/** 2000-01-01 00:00 in MS-DOS form: fixed, so equal contents zip equally. */
const DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
/** Sizes and offsets past this need zip64, which this writer leaves out. */
const MAX_ZIP_BYTES = 0xffffffff;

interface Placed {
  name: Buffer;
  size: number;
  streamed: boolean;
  offset: number;
  crc: number;
}

/**
 * Writes a zip of stored (uncompressed) entries as a stream whose size is
 * known before its first byte, so that it can go to storage as one PUT of
 * known length. Streamed entries are checked to give exactly their size and
 * get their CRC-32 (zlib's, several times as fast as a JavaScript table) in
 * a data descriptor after the data; entries in memory carry it in their
 * header. Written instead of with yazl, whose CRC-32 of a 20 MiB entry took
 * as long as the merge arithmetic.
 */
export function storedZip(entries: readonly StoredZipEntry[]): StoredZip {
  let offset = 0;
  const placed: Placed[] = entries.map((entry) => {
    const streamed = !Buffer.isBuffer(entry.data);
    const size = streamed ? entry.size : (entry.data as Buffer).length;
    if (!Number.isSafeInteger(size) || size! < 0) {
      throw new Error(`The zip entry ${entry.name} needs its size in bytes.`);
    }
    if (!/^[\x20-\x7e]+$/.test(entry.name)) {
      throw new Error(`The zip entry name ${entry.name} must be ASCII.`);
    }
    const name = Buffer.from(entry.name, 'ascii');
    const at = offset;
    offset += LOCAL_HEADER + name.length + size!;
    offset += streamed ? DATA_DESCRIPTOR : 0;

    return {
      name,
      size: size!,
      streamed,
      offset: at,
      crc: streamed ? 0 : crc32(entry.data as Buffer),
    };
  });
  const directoryOffset = offset;
  const directoryBytes = placed.reduce(
    (n, p) => n + CENTRAL_HEADER + p.name.length,
    0,
  );
  const size = directoryOffset + directoryBytes + END_OF_CENTRAL_DIRECTORY;
  if (size > MAX_ZIP_BYTES) {
    throw new Error(
      `A zip of ${size} bytes needs zip64, which is not written; ` +
        'artifacts stay below 4 GiB.',
    );
  }

  async function* bytes(): AsyncGenerator<Uint8Array> {
    for (const [i, entry] of entries.entries()) {
      const p = placed[i];
      yield localHeader(p);
      if (!p.streamed) {
        yield entry.data as Buffer;
        continue;
      }
      let crc = 0;
      let seen = 0;
      for await (const chunk of entry.data as AsyncIterable<Uint8Array>) {
        seen += chunk.length;
        if (seen > p.size) {
          break;
        }
        crc = crc32(chunk, crc);
        yield chunk;
      }
      if (seen !== p.size) {
        throw new Error(
          `The zip entry ${entry.name} gave ` +
            `${seen > p.size ? `more than ${p.size}` : seen} bytes; ` +
            `its size is ${p.size}.`,
        );
      }
      p.crc = crc;
      yield dataDescriptor(p);
    }
    const directory = Buffer.alloc(directoryBytes + END_OF_CENTRAL_DIRECTORY);
    let at = 0;
    for (const p of placed) {
      at = centralHeader(directory, at, p);
    }
    directory.writeUInt32LE(ZIP.endOfCentralDirectorySignature, at);
    directory.writeUInt16LE(0, at + 4); // this disk
    directory.writeUInt16LE(0, at + 6); // disk of the directory
    directory.writeUInt16LE(placed.length, at + 8);
    directory.writeUInt16LE(placed.length, at + 10);
    directory.writeUInt32LE(directoryBytes, at + 12);
    directory.writeUInt32LE(directoryOffset, at + 16);
    directory.writeUInt16LE(0, at + 20); // comment length
    yield directory;
  }

  return { size, stream: Readable.from(bytes(), { objectMode: false }) };
}

/** Fields shared by the local and central headers, from `version needed`. */
function writeCommon(buffer: Buffer, at: number, p: Placed): void {
  buffer.writeUInt16LE(VERSION, at);
  buffer.writeUInt16LE(p.streamed ? FLAG_DATA_DESCRIPTOR : 0, at + 2);
  buffer.writeUInt16LE(0, at + 4); // stored
  buffer.writeUInt16LE(DOS_TIME, at + 6);
  buffer.writeUInt16LE(DOS_DATE, at + 8);
}

function localHeader(p: Placed): Buffer {
  const header = Buffer.alloc(LOCAL_HEADER + p.name.length);
  header.writeUInt32LE(ZIP.localHeaderSignature, 0);
  writeCommon(header, 4, p);
  // With a data descriptor, CRC-32 and sizes are zero here.
  header.writeUInt32LE(p.streamed ? 0 : p.crc, 14);
  header.writeUInt32LE(p.streamed ? 0 : p.size, 18);
  header.writeUInt32LE(p.streamed ? 0 : p.size, 22);
  header.writeUInt16LE(p.name.length, 26);
  header.writeUInt16LE(0, 28); // extra field length
  p.name.copy(header, LOCAL_HEADER);

  return header;
}

function dataDescriptor(p: Placed): Buffer {
  const descriptor = Buffer.alloc(DATA_DESCRIPTOR);
  descriptor.writeUInt32LE(ZIP.dataDescriptorSignature, 0);
  descriptor.writeUInt32LE(p.crc, 4);
  descriptor.writeUInt32LE(p.size, 8);
  descriptor.writeUInt32LE(p.size, 12);

  return descriptor;
}

/** Writes the entry's central directory header at `at`; returns its end. */
function centralHeader(buffer: Buffer, at: number, p: Placed): number {
  buffer.writeUInt32LE(ZIP.centralHeaderSignature, at);
  buffer.writeUInt16LE(VERSION, at + 4); // version made by: MS-DOS, 2.0
  writeCommon(buffer, at + 6, p);
  buffer.writeUInt32LE(p.crc, at + 16);
  buffer.writeUInt32LE(p.size, at + 20);
  buffer.writeUInt32LE(p.size, at + 24);
  buffer.writeUInt16LE(p.name.length, at + 28);
  buffer.writeUInt16LE(0, at + 30); // extra field length
  buffer.writeUInt16LE(0, at + 32); // comment length
  buffer.writeUInt16LE(0, at + 34); // disk
  buffer.writeUInt16LE(0, at + 36); // internal attributes
  buffer.writeUInt32LE(0, at + 38); // external attributes
  buffer.writeUInt32LE(p.offset, at + 42);
  p.name.copy(buffer, at + CENTRAL_HEADER);

  return at + CENTRAL_HEADER + p.name.length;
}
