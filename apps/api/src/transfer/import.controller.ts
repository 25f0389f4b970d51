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
import { ImportService, type ImportFiles } from './import.service';

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
      'can start from.',
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
    const files: ImportFiles = {};
    const fields: Record<string, string> = {};
    for await (const part of request.parts({
      limits: { fileSize: limit, files: 3 },
    })) {
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (!['artifact', 'model', 'weights'].includes(part.fieldname)) {
        await part.toBuffer().catch(() => undefined);
        throw ChorusError.badInput(
          part.fieldname,
          `Unknown file part "${part.fieldname}"; send "artifact", or "model" and "weights".`,
        );
      }
      // Bounded by IMPORT_MAX_BYTES: a model is loaded whole to be checked
      // (as it is to be trained or served).
      const bytes = await part.toBuffer().catch(() => {
        throw ChorusError.badInput(
          part.fieldname,
          `${part.fieldname} is larger than the import limit of ${limit} bytes (IMPORT_MAX_BYTES).`,
        );
      });
      files[part.fieldname as keyof ImportFiles] = bytes;
    }

    return this.imports.import(principal, {
      name: fields.name,
      features: fields.features,
      files,
    });
  }
}
