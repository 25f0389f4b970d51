import { Readable } from 'node:stream';

import type { ObjectStorage } from '#libs/storage';

import { openArtifactWeights } from './artifact-reader';
import { bytesOf } from './tensors';
import { weightsHeader } from './weights-file';

/**
 * The weights of an artifact as a weights file stream: what a participant
 * downloads to start a round from. Reads one tensor at a time.
 */
export function exportGlobalWeights(
  storage: ObjectStorage,
  artifactKey: string,
): Readable {
  return Readable.from(
    (async function* () {
      const reader = await openArtifactWeights(storage, artifactKey);
      try {
        yield weightsHeader(reader.specs);
        for await (const tensor of reader) {
          yield bytesOf(tensor.values);
        }
      } finally {
        await reader.close();
      }
    })(),
    { objectMode: false },
  );
}
