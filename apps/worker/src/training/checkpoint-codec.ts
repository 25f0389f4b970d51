import type { Checkpoint } from '#libs/training';

/**
 * A checkpoint as one object, so it is written atomically: the manifest's
 * JSON length (u32 LE), the JSON, then the tensor bytes. Given as pieces
 * with their total size, to be streamed without copying the tensor bytes.
 */
export function checkpointParts(checkpoint: Checkpoint): {
  parts: Buffer[];
  size: number;
} {
  const json = Buffer.from(JSON.stringify(checkpoint.manifest));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  const { data } = checkpoint;
  const parts = [
    head,
    json,
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ];

  return { parts, size: head.length + json.length + data.byteLength };
}

export function decodeCheckpoint(bytes: Buffer): Checkpoint {
  const length = bytes.readUInt32LE(0);
  const manifest = JSON.parse(bytes.toString('utf8', 4, 4 + length));
  // Copy, so the float view is aligned whatever the buffer pool did.
  const data = new Uint8Array(bytes.subarray(4 + length));

  return { manifest, data };
}
