import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import yazl from 'yazl';

import { seededRandom } from '../random';

/** A PNG whose pixel (x, y) is `color(x, y)` as [r, g, b]. */
export function pngBytes(
  width: number,
  height: number,
  color: (x: number, y: number) => [number, number, number],
): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = color(x, y);
      const i = (y * width + x) * 4;
      png.data[i] = r;
      png.data[i + 1] = g;
      png.data[i + 2] = b;
      png.data[i + 3] = 255;
    }
  }

  return PNG.sync.write(png);
}

/** A JPEG of seeded noise. */
export function jpegBytes(width: number, height: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);

  return Buffer.from(jpeg.encode({ data, width, height }, 90).data);
}

export interface ZipEntrySpec {
  name: string;
  data: Buffer;
  /** Unix mode, for example 0o120777 for a symlink. */
  mode?: number;
  compress?: boolean;
}

/** Builds a zip archive in memory with yazl. */
export async function zipOf(entries: ZipEntrySpec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const entry of entries) {
    zip.addBuffer(entry.data, entry.name, {
      mode: entry.mode,
      compress: entry.compress ?? true,
    });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);

  return Buffer.concat(chunks);
}

/**
 * Renames an entry in place, in both its local header and the central
 * directory: how the tests craft names that zip writers refuse to write
 * (`../x`, `/x`, `a\b`). The new name must have the same length.
 */
export function renameEntry(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('names must be as long');
  const out = Buffer.from(zip);
  const needle = Buffer.from(from);
  let at = out.indexOf(needle);
  let found = 0;
  while (at >= 0) {
    out.write(to, at, 'latin1');
    found += 1;
    at = out.indexOf(needle, at + 1);
  }
  if (found === 0) throw new Error(`no entry named ${from}`);

  return out;
}
