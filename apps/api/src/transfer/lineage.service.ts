import { Inject, Injectable } from '@nestjs/common';

import type { PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';

import { Principal } from '../auth/principal';
import { parseId } from '../common/input';
import { PRISMA } from '../core/tokens';
import type { Lineage, LineageNode } from './transfer.types';

interface Reached {
  id: string;
  distance: number;
}

/** Walks the version graph (ModelVersionParent) up and down. */
@Injectable()
export class LineageService {
  constructor(@Inject(PRISMA) private readonly prisma: PrismaClient) {}

  async lineage(
    principal: Principal,
    versionId: string,
    maxDepth: number,
  ): Promise<Lineage> {
    parseId(versionId, 'versionId');
    if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 100) {
      throw ChorusError.badInput(
        'maxDepth',
        'maxDepth must be a whole number from 1 to 100.',
      );
    }
    const version = await this.prisma.modelVersion.findFirst({
      where: { id: versionId, projectId: principal.projectId },
      select: { id: true },
    });
    if (!version) {
      throw ChorusError.notFound('ModelVersion', versionId);
    }
    // Edges only join versions of one project, so the walks stay inside it.
    const ancestors = await this.prisma.$queryRaw<Reached[]>`
      WITH RECURSIVE up(id, distance) AS (
        SELECT "parentId", 1 FROM "ModelVersionParent" WHERE "childId" = ${versionId}::uuid
        UNION
        SELECT p."parentId", up.distance + 1
        FROM "ModelVersionParent" p JOIN up ON p."childId" = up.id
        WHERE up.distance < ${maxDepth}
      )
      SELECT id::text AS id, MIN(distance)::int AS distance FROM up GROUP BY id`;
    const descendants = await this.prisma.$queryRaw<Reached[]>`
      WITH RECURSIVE down(id, distance) AS (
        SELECT "childId", 1 FROM "ModelVersionParent" WHERE "parentId" = ${versionId}::uuid
        UNION
        SELECT p."childId", down.distance + 1
        FROM "ModelVersionParent" p JOIN down ON p."parentId" = down.id
        WHERE down.distance < ${maxDepth}
      )
      SELECT id::text AS id, MIN(distance)::int AS distance FROM down GROUP BY id`;
    const nodes = await this.nodes(principal.projectId, [
      { id: versionId, distance: 0 },
      ...ancestors,
      ...descendants,
    ]);
    const pick = (reached: Reached[]) =>
      reached
        .sort((a, b) => a.distance - b.distance || a.id.localeCompare(b.id))
        .flatMap((r) => {
          const node = nodes.get(r.id);

          return node ? [{ ...node, distance: r.distance }] : [];
        });

    return {
      version: nodes.get(versionId)!,
      ancestors: pick(ancestors),
      descendants: pick(descendants),
    };
  }

  private async nodes(
    projectId: string,
    reached: Reached[],
  ): Promise<Map<string, LineageNode>> {
    const ids = [...new Set(reached.map((r) => r.id))];
    const rows = await this.prisma.modelVersion.findMany({
      where: { id: { in: ids }, projectId },
      include: { parents: true },
    });

    return new Map(
      rows.map((row) => [
        row.id,
        {
          id: row.id,
          modelId: row.modelId,
          number: row.number,
          sha256: row.sha256,
          kind: String((row.lineage as { kind?: string })?.kind ?? 'trained'),
          distance: 0,
          parents: row.parents.map((p) => ({
            versionId: p.parentId,
            relation: p.relation,
          })),
        },
      ]),
    );
  }
}
