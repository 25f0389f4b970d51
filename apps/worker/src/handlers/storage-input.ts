import type { DatasetInput } from '#libs/datasets';
import type { ObjectStorage } from '#libs/storage';

/** A dataset file in object storage as libs/datasets reads it. */
export function storageInput(
  storage: ObjectStorage,
  key: string,
  size: number,
  fileName: string,
): DatasetInput {
  return {
    fileName,
    size,
    open: () => storage.get(key),
    // libs/datasets ranges end exclusive; S3 ranges end inclusive.
    openRange: (start, end) => storage.get(key, { start, end: end - 1 }),
  };
}
