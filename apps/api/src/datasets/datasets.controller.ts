import { Readable } from 'node:stream';

import {
  Controller,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiOperation,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { ChorusError, ErrorCode } from '#libs/errors';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { DatasetsService } from './datasets.service';

@ApiTags('datasets')
@ApiBearerAuth()
@Controller('v1/datasets')
export class DatasetsController {
  constructor(private readonly datasets: DatasetsService) {}

  @Post()
  @HttpCode(201)
  @RequireScope('WRITE')
  @ApiOperation({
    summary: 'Upload a dataset file by streaming the request body.',
    description:
      'Send the file as the raw body (any content type except JSON, for ' +
      'example text/csv or application/octet-stream) or as ' +
      'multipart/form-data with the file last. The body is streamed into ' +
      'object storage and the sha256 computed on the way; the dataset is ' +
      'then validated and sharded by an ingest job.',
  })
  @ApiConsumes('application/octet-stream', 'text/csv', 'multipart/form-data')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiQuery({ name: 'name', required: true })
  @ApiQuery({ name: 'trainRatio', required: false, example: 0.8 })
  @ApiQuery({ name: 'validationRatio', required: false, example: 0.1 })
  @ApiQuery({ name: 'testRatio', required: false, example: 0.1 })
  @ApiQuery({ name: 'seed', required: false, example: 0 })
  @ApiQuery({
    name: 'stratifyBy',
    required: false,
    description: 'Keep the class balance of this column in every split.',
  })
  @ApiQuery({
    name: 'sha256',
    required: false,
    description: 'Hex sha256 of the file; a mismatch is refused.',
  })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Query() query: Record<string, string | undefined>,
  ) {
    const split = splitFromQuery(query);
    if (request.isMultipart()) {
      // The file must be the last part; fields before it (name, sha256)
      // count like query parameters.
      const file = await request.file({
        limits: { fileSize: Number.MAX_SAFE_INTEGER, files: 1 },
      });
      if (!file) {
        throw ChorusError.badInput(
          'file',
          'The multipart form has no file part; send the file in a part named "file".',
        );
      }
      const field = (key: string) => {
        const value = file.fields[key];

        return value && 'value' in value ? String(value.value) : undefined;
      };

      return this.datasets.upload(principal, {
        name: query.name ?? field('name') ?? file.filename,
        sha256: query.sha256 ?? field('sha256'),
        split,
        body: file.file,
        contentType: file.mimetype,
      });
    }
    if (!(request.body instanceof Readable)) {
      throw new ChorusError(
        ErrorCode.BadUserInput,
        'Send the file as the raw request body with a non-JSON ' +
          'Content-Type such as text/csv or application/octet-stream, or as ' +
          'multipart/form-data.',
        { field: 'Content-Type' },
      );
    }
    const length = Number(request.headers['content-length']);

    return this.datasets.upload(principal, {
      name: query.name,
      sha256: query.sha256,
      split,
      body: request.body,
      contentType: request.headers['content-type'],
      contentLength: Number.isFinite(length) ? length : undefined,
    });
  }

  @Get(':id/file')
  @ApiOperation({
    summary: 'Download the original file; supports a single Range.',
  })
  async file(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const { dataset, size, range, stream } = await this.datasets.openFile(
      principal,
      id,
      request.headers.range,
    );
    reply
      .header('Accept-Ranges', 'bytes')
      .header('Content-Type', dataset.contentType ?? 'application/octet-stream')
      .header('X-Content-SHA256', dataset.sha256);
    if (range) {
      reply
        .status(206)
        .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
        .header('Content-Length', range.end - range.start + 1);
    } else {
      reply.status(200).header('Content-Length', size);
    }

    return reply.send(stream);
  }
}

/** Split ratios from query parameters; undefined when none is given. */
function splitFromQuery(query: Record<string, string | undefined>) {
  const keys = ['trainRatio', 'validationRatio', 'testRatio', 'seed'];
  if (!keys.some((key) => query[key] !== undefined) && !query.stratifyBy) {
    return undefined;
  }
  const number = (key: string) =>
    query[key] === undefined ? undefined : Number(query[key]);

  return {
    train: number('trainRatio'),
    validation: number('validationRatio'),
    test: number('testRatio'),
    seed: number('seed'),
    stratifyBy: query.stratifyBy,
  };
}
