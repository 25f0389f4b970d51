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
      'Send the file as the raw body (any content type except JSON, for example text/csv or application/octet-stream). The body is streamed into object storage; the sha256 is computed on the way.',
  })
  @ApiConsumes('application/octet-stream', 'text/csv')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiQuery({ name: 'name', required: true })
  @ApiQuery({
    name: 'sha256',
    required: false,
    description: 'Hex sha256 of the file; a mismatch is refused.',
  })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Query('name') name: unknown,
    @Query('sha256') sha256: unknown,
  ) {
    if (!(request.body instanceof Readable)) {
      throw new ChorusError(
        ErrorCode.BadUserInput,
        'Send the file as the raw request body with a non-JSON Content-Type such as text/csv or application/octet-stream.',
        { field: 'Content-Type' },
      );
    }
    const length = Number(request.headers['content-length']);

    return this.datasets.upload(principal, {
      name,
      sha256,
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
