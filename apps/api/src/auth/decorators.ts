import {
  createParamDecorator,
  ExecutionContext,
  SetMetadata,
} from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';

import type { ApiKeyScope } from '#libs/db';

import type { Principal } from './principal';

export const PUBLIC_KEY = 'chorus:public';
export const SCOPE_KEY = 'chorus:scope';

/** The route needs no API key (health checks only). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

/** The key must hold this scope (ADMIN implies WRITE implies READ). */
export const RequireScope = (scope: ApiKeyScope) =>
  SetMetadata(SCOPE_KEY, scope);

/** The request object for REST or GraphQL (HTTP and websocket). */
export function requestOf(context: ExecutionContext): {
  headers?: Record<string, string | string[] | undefined>;
  principal?: Principal;
  connectionParams?: Record<string, unknown>;
} {
  if (context.getType<string>() === 'graphql') {
    const ctx = GqlExecutionContext.create(context).getContext();

    return ctx.req ?? ctx;
  }

  return context.switchToHttp().getRequest();
}

/** Injects the authenticated caller. */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal => {
    const principal = requestOf(context).principal;
    if (!principal) {
      throw new Error('CurrentPrincipal used on a route without a key');
    }

    return principal;
  },
);
