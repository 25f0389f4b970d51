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
  const checkpoints = `projects/${job.projectId}/jobs/${job.id}/checkpoints/`;

  return {
    /** Every attempt's checkpoints, for removal once the job is done. */
    checkpoints,
    checkpointPrefix: `${checkpoints}attempt-${attempt}/`,
    artifact:
      `projects/${job.projectId}/models/${modelId}/artifacts/` +
      `${job.id}-${attempt}.zip`,
  };
}
