import { Body, Controller, Get, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
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
      'Download a version as a zip: model.json and weights.bin (tfjs layers format) and manifest.json (preprocessing, tasks, labels). X-Content-SHA256 carries its sha256.',
  })
  async artifact(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const { version, stream } = await this.models.openArtifact(principal, id);

    return reply
      .header('Content-Type', 'application/zip')
      .header('Content-Length', version.sizeBytes)
      .header('X-Content-SHA256', version.sha256)
      .header(
        'Content-Disposition',
        `attachment; filename="model-${version.modelId}-v${version.number}.zip"`,
      )
      .send(stream);
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
