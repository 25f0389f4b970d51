import { Inject, Injectable } from '@nestjs/common';

import type { ApiKeyScope, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';

import { hashApiKey, sameHash } from './api-keys';
import { Principal } from './principal';
import { PRISMA } from '../core/tokens';

const KEY_SHAPE = /^chorus_[A-Za-z0-9_-]{20,200}$/;
const SCOPE_RANK: Record<ApiKeyScope, number> = { READ: 1, WRITE: 2, ADMIN: 3 };

/** Turns a bearer key into a principal; every request goes through here. */
@Injectable()
export class ApiKeyService {
  private readonly lastTouched = new Map<string, number>();

  constructor(@Inject(PRISMA) private readonly prisma: PrismaClient) {}

  /** Reads `Authorization: Bearer <key>` and resolves it. */
  async authenticateHeader(header: unknown): Promise<Principal> {
    if (typeof header !== 'string' || header.trim() === '') {
      throw ChorusError.unauthenticated(
        'An API key is required: send "Authorization: Bearer <key>".',
      );
    }
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) {
      throw ChorusError.unauthenticated(
        'The Authorization header must be "Bearer <key>".',
      );
    }

    return this.authenticate(match[1]);
  }

  /**
   * Looks the key up by its hash. Revocation and expiry are read from the
   * database on every call, so a revoked key stops working at once.
   */
  async authenticate(key: string): Promise<Principal> {
    const invalid = ChorusError.unauthenticated(
      'The API key is not valid: it is unknown, revoked or expired.',
    );
    if (!KEY_SHAPE.test(key)) {
      throw invalid;
    }
    const hash = hashApiKey(key);
    const row = await this.prisma.apiKey.findUnique({
      where: { hash },
      include: { project: { select: { system: true } } },
    });
    if (
      !row ||
      !sameHash(row.hash, hash) ||
      row.revokedAt ||
      (row.expiresAt && row.expiresAt.getTime() <= Date.now())
    ) {
      throw invalid;
    }
    this.touch(row.id);

    return {
      keyId: row.id,
      projectId: row.projectId,
      scopes: row.scopes,
      platformAdmin: row.project.system && row.scopes.includes('ADMIN'),
    };
  }

  /** Throws FORBIDDEN unless the principal holds the scope or a higher one. */
  requireScope(principal: Principal, scope: ApiKeyScope): void {
    const rank = Math.max(0, ...principal.scopes.map((s) => SCOPE_RANK[s]));
    if (rank < SCOPE_RANK[scope]) {
      throw ChorusError.forbidden(
        `This operation needs an API key with the ${scope} scope; this key ` +
          `has ${principal.scopes.join(', ') || 'no scopes'}.`,
      );
    }
  }

  /** Records last use at most once a minute per key, off the request path. */
  private touch(keyId: string) {
    const now = Date.now();
    if (now - (this.lastTouched.get(keyId) ?? 0) < 60_000) {
      return;
    }
    this.lastTouched.set(keyId, now);
    void this.prisma.apiKey
      .update({ where: { id: keyId }, data: { lastUsedAt: new Date(now) } })
      .catch(() => this.lastTouched.delete(keyId));
  }
}
