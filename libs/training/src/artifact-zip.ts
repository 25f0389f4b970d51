import yauzl from 'yauzl';
import yazl from 'yazl';

import type { Artifact, ArtifactManifest } from './artifact';

/** The files of an artifact zip, as clients find them. */
export const ARTIFACT_FILES = {
  model: 'model.json',
  weights: 'weights.bin',
  manifest: 'manifest.json',
} as const;

/**
 * Packs an artifact as a zip of model.json, manifest.json and weights.bin,
 * in that order, so that a reader finds the metadata in the first bytes and
 * streams the weights on from the same request. Entry dates are fixed, so
 * the same artifact always gives the same bytes (and sha256). Zips of older
 * versions, with manifest.json last or weights.bin deflated, read the same.
 */
export async function zipArtifact(artifact: Artifact): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const mtime = new Date('2000-01-01T00:00:00Z');
  zip.addBuffer(Buffer.from(artifact.modelJson), ARTIFACT_FILES.model, {
    mtime,
  });
  zip.addBuffer(
    Buffer.from(JSON.stringify(artifact.manifest, null, 2)),
    ARTIFACT_FILES.manifest,
    { mtime },
  );
  // Stored, not deflated: float weights barely compress, and a reader can
  // then stream or range-read weights.bin without inflating.
  zip.addBuffer(Buffer.from(artifact.weights), ARTIFACT_FILES.weights, {
    mtime,
    compress: false,
  });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) {
    chunks.push(chunk as Buffer);
  }

  return Buffer.concat(chunks);
}

/** Reads an artifact zip made by {@link zipArtifact}. */
export async function unzipArtifact(bytes: Buffer): Promise<Artifact> {
  const files = await readZip(bytes);
  for (const name of Object.values(ARTIFACT_FILES)) {
    if (!files[name]) {
      throw new Error(`The artifact zip has no ${name}.`);
    }
  }

  return {
    manifest: JSON.parse(
      files[ARTIFACT_FILES.manifest].toString('utf8'),
    ) as ArtifactManifest,
    modelJson: files[ARTIFACT_FILES.model].toString('utf8'),
    weights: new Uint8Array(files[ARTIFACT_FILES.weights]),
  };
}

function readZip(bytes: Buffer): Promise<Record<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error || !zip) {
        return reject(error ?? new Error('Not a zip archive.'));
      }
      const files: Record<string, Buffer> = {};
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, async (openError, stream) => {
          if (openError || !stream) {
            return reject(openError);
          }
          const parts: Buffer[] = [];
          try {
            for await (const part of stream) {
              parts.push(part as Buffer);
            }
          } catch (readError) {
            return reject(readError);
          }
          files[entry.fileName] = Buffer.concat(parts);
          zip.readEntry();
        });
      });
      zip.on('end', () => resolve(files));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}
