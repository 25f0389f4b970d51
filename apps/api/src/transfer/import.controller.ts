import { Controller, HttpCode, Inject, Post, Req } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import '@fastify/multipart';
import type { FastifyRequest } from 'fastify';

import type { Env } from '#libs/config';
import { ChorusError } from '#libs/errors';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { ENV } from '../core/tokens';
import { ImportService } from './import.service';

@ApiTags('models')
@ApiBearerAuth()
@Controller('v1/models')
export class ImportController {
  constructor(
    private readonly imports: ImportService,
    @Inject(ENV) private readonly env: Env,
  ) {}

  @Post('import')
  @HttpCode(201)
  @RequireScope('WRITE')
  @ApiOperation({
    summary: 'Import a backbone as a new model with one version.',
    description:
      'multipart/form-data with either an "artifact" part (a Chorus ' +
      'artifact zip made elsewhere) or "model" (a tfjs layers model.json) ' +
      'and "weights" (its weight file). Fields: "name" (required) and ' +
      '"features" (comma-separated input columns; for a tfjs model, the ' +
      'columns it reads). The model is validated (topology, weight sizes, ' +
      'dtypes, finite values) and registered as a version that fineTune ' +
      'can start from. Files stream into storage and are checked from ' +
      'there a tensor at a time; a failed import leaves nothing behind.',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        features: { type: 'string' },
        artifact: { type: 'string', format: 'binary' },
        model: { type: 'string', format: 'binary' },
        weights: { type: 'string', format: 'binary' },
      },
    },
  })
  async import(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
  ) {
    if (!request.isMultipart()) {
      throw ChorusError.badInput(
        'Content-Type',
        'Send the model as multipart/form-data with an "artifact" part, or ' +
          '"model" and "weights" parts.',
      );
    }
    const limit = this.env.IMPORT_MAX_BYTES;
    const tooLarge = (field: string) =>
      ChorusError.badInput(
        field,
        `${field} is larger than the import limit of ${limit} bytes (IMPORT_MAX_BYTES).`,
      );
    const fields: Record<string, string> = {};
    const staging = this.imports.begin(principal);
    try {
      for await (const part of request.parts({
        limits: { fileSize: limit, files: 3 },
      })) {
        if (part.type === 'field') {
          fields[part.fieldname] = String(part.value);
          continue;
        }
        const field = part.fieldname;
        if (field === 'model') {
          // model.json: topology and weight names, small; read whole.
          staging.modelJson = await readSmall(part.file, MODEL_JSON_MAX_BYTES);
          if (!staging.modelJson) {
            part.file.resume();
            throw ChorusError.badInput(
              'model',
              `model is larger than ${MODEL_JSON_MAX_BYTES} bytes; a ` +
                'model.json holds the topology and weight names only.',
            );
          }
        } else if (field === 'artifact' || field === 'weights') {
          // Streamed into storage, never held whole.
          staging[field] = await this.imports.stage(staging, field, part.file);
        } else {
          part.file.resume();
          throw ChorusError.badInput(
            field,
            `Unknown file part "${field}"; send "artifact", or "model" and "weights".`,
          );
        }
        if (part.file.truncated) {
          throw tooLarge(field);
        }
      }

      return await this.imports.import(principal, staging, {
        name: fields.name,
        features: fields.features,
      });
    } catch (error) {
      // Nothing of a failed import stays in storage.
      await this.imports.discard(staging);
      throw error;
    }
  }
}

/** The most a model.json part may hold. */
const MODEL_JSON_MAX_BYTES = 16 * 1024 * 1024;

/** The whole of a stream up to `max` bytes, or undefined past that. */
async function readSmall(
  stream: AsyncIterable<Buffer>,
  max: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    if (bytes > max) {
      return undefined;
    }
    chunks.push(chunk);
  }

  return Buffer.concat(chunks, bytes);
}
