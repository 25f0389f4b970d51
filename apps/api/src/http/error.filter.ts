import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';

import { ChorusError, ErrorCode, httpStatusFor } from '#libs/errors';

import { codeForStatus } from '../graphql/format-error';

/**
 * The one mapper from thrown errors to REST responses:
 * `{ error: { code, message, ...details } }` with the code's HTTP status.
 * GraphQL errors are left to Apollo's formatError.
 */
@Catch()
export class RestErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(RestErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost) {
    if (host.getType<string>() === 'graphql') {
      throw exception;
    }
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const body = this.toBody(exception);
    if (reply.sent) {
      return;
    }
    if (body.code === ErrorCode.RateLimited) {
      reply.header('Retry-After', String(body.retryAfterSeconds ?? 1));
    }
    reply.status(httpStatusFor(body.code)).send({ error: body });
  }

  private toBody(exception: unknown): {
    code: ErrorCode;
    message: string;
    [key: string]: unknown;
  } {
    if (exception instanceof ChorusError) {
      return {
        code: exception.code,
        message: exception.message,
        ...exception.details,
      };
    }
    if (exception instanceof HttpException) {
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : String((response as { message?: unknown }).message ?? '');

      return { code: codeForStatus(exception.getStatus()), message };
    }
    this.logger.error(exception);

    return { code: ErrorCode.Internal, message: 'Internal server error' };
  }
}
