import { Prisma, type PrismaTransaction } from '#libs/db';
import { ChorusError } from '#libs/errors';
import type { JobQueue } from '#libs/queue';

import type { FederatedRoundJobConfig } from './federated-config';
import { announceJob, submitJob } from './submit';

/** A validated update, stored, waiting to be counted in its round. */
export interface AcceptedUpdate extends UpdateSlot {
  projectId: string;
  objectKey: string;
  sampleCount: number;
  /** Measured on receipt (external), or null until aggregation (silos). */
  norm: number | null;
  clipped: boolean;
}

/**
 * Counts an update in its round, in the caller's transaction: the round row
 * is locked, so of two last updates exactly one sees the round complete and
 * queues its closing. A round that is no longer open, or a participant not
 * asked this round, is CONFLICT (stale); a second update is CONFLICT too.
 */
export async function acceptUpdate(
  tx: PrismaTransaction,
  queue: JobQueue,
  update: AcceptedUpdate,
): Promise<{ complete: boolean }> {
  const round = await assertRoundTakes(tx, update, true);
  await tx.federatedUpdate.create({
    data: {
      runId: update.runId,
      round: update.round,
      participantId: update.participantId,
      objectKey: update.objectKey,
      sampleCount: update.sampleCount,
      norm: update.norm,
      clipped: update.clipped,
    },
  });
  const count = await tx.federatedUpdate.count({
    where: { runId: update.runId, round: update.round },
  });
  const complete = count >= round.participantIds.length;
  if (complete) {
    await submitRoundJob(tx, queue, update.projectId, {
      runId: update.runId,
      round: update.round,
      phase: 'close',
    });
  }

  return { complete };
}

/** Which contribution: one participant's to one round of a run. */
export interface UpdateSlot {
  runId: string;
  round: number;
  participantId: string;
}

/**
 * Refuses an update its round cannot take, with CONFLICT: the round is not
 * open (closed, failed, stopped, not yet opened), the participant was not
 * asked, or it contributed already. With `lock` the round row stays locked
 * for the rest of the caller's transaction, so counting is serialised.
 * Returns who the round asked.
 */
export async function assertRoundTakes(
  db: Pick<PrismaTransaction, '$queryRaw' | 'federatedUpdate'>,
  slot: UpdateSlot,
  lock = false,
): Promise<{ participantIds: string[] }> {
  const [round] = await db.$queryRaw<
    { status: string; participantIds: string[] }[]
  >`SELECT status::text AS status, "participantIds"::text[] AS "participantIds"
    FROM "FederatedRound"
    WHERE "runId" = ${slot.runId}::uuid AND number = ${slot.round}
    ${lock ? Prisma.sql`FOR UPDATE` : Prisma.empty}`;
  const refuse = (message: string) =>
    ChorusError.conflict(message, { field: 'round' });
  if (!round || round.status !== 'OPEN') {
    throw refuse(
      `Round ${slot.round} of run ${slot.runId} is ` +
        `${round ? round.status.toLowerCase() : 'not open'}; fetch the ` +
        'current round and train on its global weights.',
    );
  }
  if (!round.participantIds.includes(slot.participantId)) {
    throw refuse(
      `Participant ${slot.participantId} was not asked to contribute to ` +
        `round ${slot.round}.`,
    );
  }
  const existing = await db.federatedUpdate.findUnique({
    where: {
      runId_round_participantId: {
        runId: slot.runId,
        round: slot.round,
        participantId: slot.participantId,
      },
    },
    select: { participantId: true },
  });
  if (existing) {
    throw refuse(
      `Participant ${slot.participantId} already contributed to round ` +
        `${slot.round}; one update per round.`,
    );
  }

  return round;
}

/** Queues a round's opening or closing (at `startAfter`, for a deadline). */
export function submitRoundJob(
  tx: PrismaTransaction,
  queue: JobQueue,
  projectId: string,
  config: FederatedRoundJobConfig,
  startAfter?: Date,
) {
  return submitJob(tx, queue, {
    projectId,
    kind: 'FEDERATED_ROUND',
    config: config as never,
    startAfter,
    // Closing a round frees the next one: let it go first.
    priority: config.phase === 'close' ? 10 : 5,
  });
}

/** Cancels a run's queued and running jobs (local trainings, rounds). */
export async function cancelRunJobs(tx: PrismaTransaction, runId: string) {
  const live = await tx.job.findMany({
    where: {
      kind: { in: ['FEDERATED_LOCAL', 'FEDERATED_ROUND'] },
      status: { in: ['QUEUED', 'RUNNING'] },
      config: { path: ['runId'], equals: runId },
    },
  });
  for (const job of live) {
    const row = await tx.job.update({
      where: { id: job.id },
      data: { status: 'CANCELLED', finishedAt: new Date() },
    });
    await announceJob(tx, row, 'cancelled: the run ended');
  }
}
