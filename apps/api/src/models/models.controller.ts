import { Body, Controller, Get, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import { CurrentPrincipal } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { ModelsService } from './models.service';

@ApiTags('models')
@ApiBearerAuth()
@Controller('v1/model-versions')
export class ModelsController {
  constructor(private readonly models: ModelsService) {}

  @Get(':id/artifact')
  @ApiOperation({
    summary:
      'Download a version as a zip: model.json and weights.bin (tfjs ' +
      'layers format) and manifest.json (preprocessing, tasks, labels). ' +
      'X-Content-SHA256 carries its sha256.',
  })
  @ApiQuery({
    name: 'task',
    required: false,
    description: "Export only the backbone and this task's head.",
  })
  async artifact(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Query('task') task: string | undefined,
    @Res() reply: FastifyReply,
  ) {
    const file = await this.models.openArtifact(principal, id, task);

    return reply
      .header('Content-Type', 'application/zip')
      .header('Content-Length', file.sizeBytes)
      .header('X-Content-SHA256', file.sha256)
      .header('Content-Disposition', `attachment; filename="${file.name}"`)
      .send(file.stream);
  }

  @Post(':id/predict')
  @ApiOperation({ summary: 'Predict every task for up to 1,000 rows.' })
  @ApiBody({
    schema: {
      type: 'object',
      properties: { rows: { type: 'array', items: { type: 'object' } } },
    },
  })
  predict(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Body() body: { rows?: unknown },
  ) {
    return this.models.predict(principal, id, body?.rows);
  }
}
