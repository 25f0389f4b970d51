import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';

import type { ApiKeyScope } from '#libs/db';

import { ApiKeyService } from './api-key.service';
import { PUBLIC_KEY, requestOf, SCOPE_KEY } from './decorators';

/**
 * Global guard: every REST route and GraphQL operation needs a valid key,
 * except routes marked @Public(). Subscriptions authenticate once, when the
 * websocket connects, and carry the principal in their context.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) {
      return true;
    }
    const request = requestOf(context);
    if (!request.principal) {
      request.principal = await this.keys.authenticateHeader(
        request.headers?.authorization,
      );
    }
    const scope = this.reflector.getAllAndOverride<ApiKeyScope>(
      SCOPE_KEY,
      targets,
    );
    this.keys.requireScope(request.principal, scope ?? 'READ');

    return true;
  }
}
