import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

import type { ImageShape } from './contract';
import type { ImageCell } from './input';

export type ImageKind = 'png' | 'jpeg';

export interface RgbaImage {
  width: number;
  height: number;
  /** width x height x 4 bytes, row-major. */
  data: Uint8Array;
}

/** Tells PNG and JPEG apart by their first bytes, not by file name. */
export function imageKindOf(bytes: Uint8Array): ImageKind | undefined {
  if (
    bytes.length >= 8 &&
    bytes[0] === 0x89 &&
    bytes[1] === 0x50 &&
    bytes[2] === 0x4e &&
    bytes[3] === 0x47
  ) {
    return 'png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    return bytes[2] === 0xff ? 'jpeg' : undefined;
  }

  return undefined;
}

export class ImageDecodeError extends Error {
  constructor(
    message: string,
    readonly tooLarge = false,
  ) {
    super(message);
  }
}

/**
 * Decodes a PNG or JPEG into RGBA, refusing images over `maxPixels` before
 * any pixel memory is allocated.
 */
export function decodeImage(
  bytes: Buffer,
  kind: ImageKind,
  maxPixels: number,
): RgbaImage {
  if (kind === 'png') {
    if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR') {
      throw new ImageDecodeError('the PNG header is missing or damaged');
    }
    const width = bytes.readUInt32BE(16);
    const height = bytes.readUInt32BE(20);
    checkSize(width, height, maxPixels);
    try {
      const png = PNG.sync.read(bytes);

      return { width: png.width, height: png.height, data: png.data };
    } catch (error) {
      throw new ImageDecodeError((error as Error).message);
    }
  }
  try {
    const image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      tolerantDecoding: false,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: 1024,
    });
    checkSize(image.width, image.height, maxPixels);

    return { width: image.width, height: image.height, data: image.data };
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    const message = (error as Error).message;
    throw new ImageDecodeError(message, /resolution|memory/i.test(message));
  }
}

function checkSize(width: number, height: number, maxPixels: number): void {
  if (width === 0 || height === 0) {
    throw new ImageDecodeError('the image has no pixels');
  }
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      `the image is ${width}x${height}, over the limit of ${maxPixels} pixels`,
      true,
    );
  }
}

/** The shape used when none is given: the first image, longest side <= 128. */
export function defaultShape(image: RgbaImage, maxSide = 128): ImageShape {
  const scale = Math.min(1, maxSide / Math.max(image.width, image.height));

  return {
    height: Math.max(1, Math.round(image.height * scale)),
    width: Math.max(1, Math.round(image.width * scale)),
    channels: 3,
  };
}

/**
 * Resizes with bilinear sampling (pixel centres aligned) into the target
 * shape; transparent pixels are blended onto black, and one channel means
 * luminance.
 */
export function resizeImage(image: RgbaImage, shape: ImageShape): ImageCell {
  const { width: sw, height: sh, data } = image;
  const { width: tw, height: th, channels } = shape;
  let gray = true;
  for (let i = 0; i < data.length && gray; i += 4) {
    gray = data[i] === data[i + 1] && data[i] === data[i + 2];
  }
  const out = new Uint8Array(th * tw * channels);
  const sx = sw / tw;
  const sy = sh / th;
  const rgb = [0, 0, 0];
  for (let y = 0; y < th; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    for (let x = 0; x < tw; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), sw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, sw - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => {
          const i = (yy * sw + xx) * 4;

          return (data[i + c] * data[i + 3]) / 255;
        };
        const top = p(y0, x0) * (1 - wx) + p(y0, x1) * wx;
        const bottom = p(y1, x0) * (1 - wx) + p(y1, x1) * wx;
        rgb[c] = top * (1 - wy) + bottom * wy;
      }
      const o = (y * tw + x) * channels;
      if (channels === 1) {
        out[o] = Math.round(
          gray ? rgb[0] : 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2],
        );
      } else {
        out[o] = Math.round(rgb[0]);
        out[o + 1] = Math.round(rgb[1]);
        out[o + 2] = Math.round(rgb[2]);
      }
    }
  }

  return { kind: 'image', pixels: out, height: th, width: tw, channels, gray };
}
