import { describe, expect, it } from 'vitest';

import type { Artifact } from './artifact';
import { unzipArtifact, zipArtifact } from './artifact-zip';

const artifact = {
  manifest: { format: 'chorus.artifact', version: 1 },
  modelJson: '{"modelTopology":{}}',
  weights: new Uint8Array([1, 2, 3, 250]),
} as unknown as Artifact;

describe('artifact zip', () => {
  it('round-trips the three files', async () => {
    const back = await unzipArtifact(await zipArtifact(artifact));

    expect(back.modelJson).toBe(artifact.modelJson);
    expect(Array.from(back.weights)).toEqual([1, 2, 3, 250]);
    expect(back.manifest).toEqual(artifact.manifest);
  });

  it('gives the same bytes for the same artifact', async () => {
    const [a, b] = await Promise.all([
      zipArtifact(artifact),
      zipArtifact(artifact),
    ]);

    expect(a.equals(b)).toBe(true);
  });

  it('refuses bytes that are not an artifact zip', async () => {
    await expect(unzipArtifact(Buffer.from('nope'))).rejects.toThrow();
  });
});
