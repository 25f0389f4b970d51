import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import multipart from '@fastify/multipart';
import { NestFactory } from '@nestjs/core';
import {
  FastifyAdapter,
  NestFastifyApplication,
} from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Logger } from 'nestjs-pino';

import { Env } from '#libs/config';

import { AppModule } from './app.module';
import { installMetrics } from './metrics/metrics';

/** JSON and form bodies are small; files go through streaming routes. */
const JSON_BODY_LIMIT = 2 * 1024 * 1024;

/** Builds the API application, ready to listen. */
export async function createApiApp(env: Env): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: JSON_BODY_LIMIT,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });
  installStreamingBodies(adapter.getInstance());
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(env),
    adapter,
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  // Streaming multipart forms: parts are read as streams, never buffered.
  await app.register(multipart);
  app.enableShutdownHooks();
  app.enableCors({
    origin: corsOrigins(env.CORS_ORIGINS),
    allowedHeaders: [
      'Authorization',
      'Content-Type',
      'X-Request-Id',
      'Apollo-Require-Preflight',
      'Range',
    ],
    exposedHeaders: ['X-Request-Id', 'Retry-After', 'X-Content-SHA256'],
    maxAge: 600,
  });
  installMetrics(app.getHttpAdapter().getInstance(), env.METRICS_TOKEN);
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Chorus REST API')
      .setDescription(
        'Streaming uploads and downloads, health and metrics. Everything ' +
          'else is GraphQL at /graphql.',
      )
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs/openapi.json',
  });

  return app;
}

/**
 * Every content type other than JSON reaches handlers as the unread request
 * stream, so uploads are streamed and never buffered. A response sent before
 * such a body was read (a 401, a 400, a 413) closes the connection, so the
 * unread bytes cannot be taken for the next request on it.
 */
function installStreamingBodies(fastify: FastifyInstance) {
  const unread = (request: FastifyRequest) =>
    request.body instanceof Readable && !request.body.readableEnded;
  fastify.addContentTypeParser('*', (_request, payload, done) =>
    done(null, payload),
  );
  fastify.addHook('onSend', async (request, reply) => {
    if (unread(request)) {
      reply.header('Connection', 'close');
    }
  });
  fastify.addHook('onResponse', async (request) => {
    if (unread(request)) {
      (request.body as Readable).destroy();
    }
  });
  // The request id (X-Request-Id or generated) goes back to the client and
  // into every log line of the request.
  fastify.addHook('onRequest', async (request, reply) => {
    request.raw.headers['x-request-id'] = request.id;
    reply.header('X-Request-Id', request.id);
  });
}

/** CORS_ORIGINS: "*" for any, a comma-separated list, or empty for none. */
export function corsOrigins(value: string): boolean | string[] {
  const origins = value
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  if (origins.includes('*')) {
    return true;
  }

  return origins.length > 0 ? origins : false;
}
