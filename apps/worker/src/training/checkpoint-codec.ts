import type { Checkpoint, CheckpointManifest } from '#libs/training';

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

/**
 * Reads a checkpoint object as it streams in: the manifest from its first
 * bytes, then the tensor bytes straight into one buffer of the size the
 * manifest gives (so it is held once, not as chunks, a joined copy and an
 * aligned one).
 */
export async function readCheckpoint(
  body: AsyncIterable<Buffer>,
): Promise<Checkpoint> {
  let head = Buffer.alloc(0);
  let manifest: CheckpointManifest | undefined;
  let data: Uint8Array | undefined;
  let filled = 0;
  for await (const chunk of body) {
    let rest = chunk;
    if (!manifest) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4 || head.length < 4 + head.readUInt32LE(0)) {
        continue;
      }
      const length = head.readUInt32LE(0);
      manifest = JSON.parse(
        head.toString('utf8', 4, 4 + length),
      ) as CheckpointManifest;
      data = new Uint8Array(4 * floatsOf(manifest));
      rest = head.subarray(4 + length);
      head = Buffer.alloc(0);
    }
    if (filled + rest.length > data!.length) {
      throw new Error(
        'The checkpoint holds more bytes than its manifest lists.',
      );
    }
    data!.set(rest, filled);
    filled += rest.length;
  }
  if (!manifest || filled !== data!.length) {
    throw new Error('The checkpoint is cut short.');
  }

  return { manifest, data: data! };
}

/** Floats of every tensor a checkpoint manifest lists, back to back. */
function floatsOf(manifest: CheckpointManifest): number {
  return Math.max(
    0,
    ...(manifest.tensors ?? []).map(
      (t) => t.offset + t.shape.reduce((a, b) => a * b, 1),
    ),
  );
}
