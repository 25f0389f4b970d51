import { Inject, Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';

import type { ApiKeyScope, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';

import { ApiKeyService } from '../auth/api-key.service';
import { newApiKey } from '../auth/api-keys';
import { Principal } from '../auth/principal';
import { nameField, parseId, parseInput } from '../common/input';
import { PageArgs, pageQuery, toPage } from '../common/pagination';
import { PRISMA } from '../core/tokens';
import { CreateApiKeyInput, CreateProjectInput } from './project.types';

const name = nameField(100);

const createProjectSchema = z.object({ name });

const createKeySchema = z.object({
  name,
  scopes: z
    .array(z.enum(['READ', 'WRITE', 'ADMIN']))
    .min(1, 'must list at least one of READ, WRITE, ADMIN'),
  expiresAt: z
    .date()
    .refine((date) => date.getTime() > Date.now(), 'must be in the future')
    .optional()
    .nullable(),
  projectId: z.uuid('must be a project id').optional().nullable(),
});

/** Projects and their API keys. */
@Injectable()
export class ProjectsService {
  private readonly logger = new Logger(ProjectsService.name);

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    private readonly keys: ApiKeyService,
  ) {}

  async createProject(principal: Principal, input: CreateProjectInput) {
    this.requirePlatformAdmin(principal, 'create projects');
    const data = parseInput(createProjectSchema, input);
    const { key, data: keyData } = newApiKey('admin', ['ADMIN']);
    const project = await this.prisma.project.create({
      data: { name: data.name, apiKeys: { create: keyData } },
      include: { apiKeys: true },
    });
    this.logger.log({ projectId: project.id }, 'Project created');

    return { project, adminKey: { apiKey: project.apiKeys[0], key } };
  }

  /** The caller's project, or for platform admins any project. */
  async findProject(principal: Principal, id: string) {
    parseId(id);
    const visible = principal.platformAdmin || id === principal.projectId;
    const project = visible
      ? await this.prisma.project.findUnique({ where: { id } })
      : null;
    if (!project) {
      throw ChorusError.notFound('Project', id);
    }

    return project;
  }

  async listProjects(principal: Principal, args: PageArgs) {
    const query = pageQuery(args);
    const rows = await this.prisma.project.findMany({
      ...query,
      where: principal.platformAdmin
        ? query.where
        : { AND: [query.where, { id: principal.projectId }] },
    });

    return toPage(rows, args);
  }

  async me(principal: Principal) {
    const apiKey = await this.prisma.apiKey.findUniqueOrThrow({
      where: { id: principal.keyId },
      include: { project: true },
    });

    return {
      project: apiKey.project,
      apiKey,
      platformAdmin: principal.platformAdmin,
    };
  }

  async createApiKey(principal: Principal, input: CreateApiKeyInput) {
    const data = parseInput(createKeySchema, input);
    const projectId = data.projectId ?? principal.projectId;
    if (projectId !== principal.projectId) {
      if (!principal.platformAdmin) {
        throw ChorusError.notFound('Project', projectId);
      }
      await this.findProject(principal, projectId);
    }
    const { key, data: keyData } = newApiKey(data.name, [
      ...new Set(data.scopes),
    ] as ApiKeyScope[]);
    const apiKey = await this.prisma.apiKey.create({
      data: { ...keyData, projectId, expiresAt: data.expiresAt ?? null },
    });
    this.logger.log({ projectId, keyId: apiKey.id }, 'API key created');

    return { apiKey, key };
  }

  async revokeApiKey(principal: Principal, id: string) {
    parseId(id);
    const existing = await this.prisma.apiKey.findFirst({
      where: principal.platformAdmin
        ? { id }
        : { id, projectId: principal.projectId },
    });
    if (!existing) {
      throw ChorusError.notFound('ApiKey', id);
    }
    const apiKey = existing.revokedAt
      ? existing
      : await this.prisma.apiKey.update({
          where: { id },
          data: { revokedAt: new Date() },
        });
    this.logger.log(
      { projectId: apiKey.projectId, keyId: apiKey.id },
      'API key revoked',
    );

    return apiKey;
  }

  /** Keys of the caller's project (or, for platform admins, any project). */
  async listApiKeys(
    principal: Principal,
    args: PageArgs,
    projectId = principal.projectId,
  ) {
    this.keys.requireScope(principal, 'ADMIN');
    if (projectId !== principal.projectId && !principal.platformAdmin) {
      throw ChorusError.notFound('Project', projectId);
    }
    const query = pageQuery(args);
    const rows = await this.prisma.apiKey.findMany({
      ...query,
      where: { AND: [query.where, { projectId }] },
    });

    return toPage(rows, args);
  }

  private requirePlatformAdmin(principal: Principal, action: string) {
    if (!principal.platformAdmin) {
      throw ChorusError.forbidden(
        `Only ADMIN keys of the system project may ${action}.`,
      );
    }
  }
}
