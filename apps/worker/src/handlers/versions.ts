import type { Prisma, PrismaTransaction } from '#libs/db';

/** What a new version is made of, and what it was made from. */
export interface NewVersion {
  projectId: string;
  modelId: string;
  jobId?: string;
  artifactKey: string;
  sha256: string;
  sizeBytes: number;
  metrics?: Record<string, unknown>;
  taskArtifacts?: Record<string, unknown>;
  lineage: { kind: string } & Record<string, unknown>;
  backend: string;
  parents?: { versionId: string; relation: 'base' | 'source' | 'previous' }[];
}

/**
 * Registers a version with the next number of its model and its lineage
 * edges, inside the caller's (fenced) transaction. The artifact must be
 * completely stored before this is called.
 */
export async function registerVersion(tx: PrismaTransaction, v: NewVersion) {
  // Versions of one model are numbered one at a time.
  await tx.$executeRaw`SELECT 1 FROM "Model" WHERE id = ${v.modelId}::uuid FOR UPDATE`;
  const last = await tx.modelVersion.findFirst({
    where: { modelId: v.modelId },
    orderBy: { number: 'desc' },
    select: { number: true },
  });
  const version = await tx.modelVersion.create({
    data: {
      projectId: v.projectId,
      modelId: v.modelId,
      number: (last?.number ?? 0) + 1,
      jobId: v.jobId,
      artifactKey: v.artifactKey,
      sha256: v.sha256,
      sizeBytes: BigInt(v.sizeBytes),
      metrics: (v.metrics ?? {}) as Prisma.InputJsonValue,
      taskArtifacts: (v.taskArtifacts ?? {}) as Prisma.InputJsonValue,
      lineage: v.lineage as Prisma.InputJsonValue,
      backend: v.backend,
    },
  });
  const parents = (v.parents ?? []).filter(
    (p, i, all) => all.findIndex((q) => q.versionId === p.versionId) === i,
  );
  if (parents.length > 0) {
    await tx.modelVersionParent.createMany({
      data: parents.map((p) => ({
        childId: version.id,
        parentId: p.versionId,
        relation: p.relation,
      })),
    });
  }

  return version;
}
