import { endianness } from 'node:os';

/** One weight's name and shape, as listed in model.json or a file header. */
export interface WeightSpec {
  name: string;
  shape: number[];
  /** Always `float32` for the weights Chorus handles. */
  dtype?: string;
}

/** A weight with its values, row-major. */
export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * Weights keyed by their original name (`backbone/dense_0/kernel`,
 * `head/<task>/logits/bias`); the same shape as libs/training's NamedWeights.
 */
export type NamedWeights = Map<
  string,
  { shape: number[]; values: Float32Array }
>;

if (endianness() !== 'LE') {
  // Float32Array views share the platform's byte order; files are little-endian.
  throw new Error(
    'libs/federation reads float32 weights on little-endian hosts only.',
  );
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export { bytesOfSpecs } from '#libs/training';

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** The bytes of a tensor's values (a view, no copy). */
export function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** Whether a weight belongs to a task head, and to which task. */
export function headTask(name: string): string | undefined {
  const match = /^head\/([^/]+)\//.exec(name);

  return match?.[1];
}
