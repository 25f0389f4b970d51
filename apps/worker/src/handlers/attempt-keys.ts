import type { Logger } from 'pino';

import type { ObjectStorage } from '#libs/storage';

/**
 * Where one attempt of a job writes: its checkpoints, and the artifact it
 * makes for a model. Keyed by attempt, so a zombie attempt never overwrites
 * what the current one stored.
 */
export function attemptKeys(
  job: { projectId: string; id: string },
  attempt: number,
  modelId: string,
) {
  const checkpoints = checkpointsOf(job);
  const artifact = `${artifactsOfJob(job, modelId)}${attempt}.zip`;

  return {
    /** Every attempt's checkpoints, for removal once the job is done. */
    checkpoints,
    checkpointPrefix: `${checkpoints}attempt-${attempt}/`,
    artifact,
    taskArtifacts: taskArtifactsOf(artifact),
  };
}

/** The prefix of every checkpoint of every attempt of a job. */
export function checkpointsOf(job: { projectId: string; id: string }) {
  return `projects/${job.projectId}/jobs/${job.id}/checkpoints/`;
}

/** The prefix of the per-task artifacts stored next to an artifact. */
export function taskArtifactsOf(artifactKey: string): string {
  return artifactKey.replace(/\.zip$/, '/tasks/');
}

/** The start of the key of every attempt's artifact of a job. */
function artifactsOfJob(
  job: { projectId: string; id: string },
  modelId: string,
) {
  return `projects/${job.projectId}/models/${modelId}/artifacts/${job.id}-`;
}

/** Which attempts' artifacts {@link removeUnregisteredArtifacts} removes. */
export interface RemovalScope {
  /** The registered attempt, whose artifacts stay. */
  keep?: number;
  /** Only attempts up to this one (a later attempt may be writing). */
  upTo?: number;
}

/**
 * Removes the artifacts (and per-task artifacts) that attempts of a job
 * stored for a model but that no version references: an attempt killed
 * between storing its artifact and registering its version leaves them,
 * and so does every attempt of a job that fails for good. A failure is
 * logged, not thrown: the job's outcome stands, and the objects are only
 * unreferenced.
 */
export async function removeUnregisteredArtifacts(
  deps: { storage: ObjectStorage; logger: Logger },
  job: { projectId: string; id: string },
  modelId: string,
  scope: RemovalScope = {},
): Promise<void> {
  const prefix = artifactsOfJob(job, modelId);
  try {
    const keys = (await deps.storage.list(prefix)).filter((key) => {
      const attempt = Number(/^\d+/.exec(key.slice(prefix.length))?.[0]);

      return (
        attempt !== scope.keep &&
        (scope.upTo === undefined || attempt <= scope.upTo)
      );
    });
    await deps.storage.removeKeys(keys);
  } catch (error) {
    deps.logger.warn(
      { jobId: job.id, error: (error as Error).message },
      'Unregistered artifacts of earlier attempts were not removed',
    );
  }
}
