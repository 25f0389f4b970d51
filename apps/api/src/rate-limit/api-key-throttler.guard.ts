import { ExecutionContext, Injectable } from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';
import { ThrottlerGuard, ThrottlerLimitDetail } from '@nestjs/throttler';

import { ChorusError, ErrorCode } from '#libs/errors';

import type { Principal } from '../auth/principal';

/** Stands in for the reply where a transport has none to set headers on. */
const NO_REPLY = { header: () => undefined };

/**
 * One request budget per API key across REST and GraphQL. It runs after the
 * auth guard, once per REST route and once per GraphQL root field, so a
 * query that repeats a field under many aliases spends one request per alias.
 * Subscriptions are not counted (they authenticate once on connect).
 */
@Injectable()
export class ApiKeyThrottlerGuard extends ThrottlerGuard {
  protected override async shouldSkip(context: ExecutionContext) {
    const { req } = this.getRequestResponse(context);

    return !req?.headers;
  }

  protected override getRequestResponse(context: ExecutionContext) {
    if (context.getType<string>() === 'graphql') {
      const ctx = GqlExecutionContext.create(context).getContext();

      return { req: ctx.req, res: ctx.reply ?? NO_REPLY };
    }
    const http = context.switchToHttp();

    return { req: http.getRequest(), res: http.getResponse() };
  }

  protected override async getTracker(req: Record<string, unknown>) {
    const principal = req.principal as Principal | undefined;

    return principal ? `key:${principal.keyId}` : `ip:${String(req.ip)}`;
  }

  protected override generateKey(
    _context: ExecutionContext,
    tracker: string,
    throttler: string,
  ): string {
    return `${throttler}:${tracker}`;
  }

  protected override async throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const retryAfterSeconds = Math.max(
      1,
      Math.ceil(detail.timeToBlockExpire || detail.timeToExpire),
    );
    throw new ChorusError(
      ErrorCode.RateLimited,
      `This API key made more than ${detail.limit} requests in ` +
        `${detail.ttl / 1000} s. Retry in ${retryAfterSeconds} s.`,
      { limit: detail.limit, retryAfterSeconds },
    );
  }
}
