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

import { ChorusError } from '#libs/errors';
import { WEIGHTS_CONTENT_TYPE } from '#libs/federation';

import { Public } from '../auth/decorators';
import { parseId } from '../common/input';
import { FederatedService } from './federated.service';

/**
 * What external participants call, with the token startFederatedRun gave
 * them (not an API key): the current round, its global weights, and the
 * update they trained.
 */
@ApiTags('federated')
@ApiBearerAuth()
@Public()
@Controller('v1/federated-runs/:runId')
export class FederatedController {
  constructor(private readonly federated: FederatedService) {}

  @Get('round')
  @ApiOperation({
    summary:
      'The current round: its number and status, whether this participant ' +
      'is asked, the model spec, local training options and the schema to ' +
      'encode rows with.',
  })
  async round(@Param('runId') runId: string, @Req() request: FastifyRequest) {
    const participant = await this.participant(runId, request);

    return this.federated.currentRound(participant);
  }

  @Get('rounds/:round/weights')
  @ApiOperation({
    summary:
      `The global weights the round trains from, as a Chorus weights file ` +
      `(${'application/vnd.chorus.weights'}).`,
  })
  async weights(
    @Param('runId') runId: string,
    @Param('round') round: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const participant = await this.participant(runId, request);
    const stream = await this.federated.roundWeights(
      participant,
      Number(round),
    );

    return reply.header('Content-Type', WEIGHTS_CONTENT_TYPE).send(stream);
  }

  @Post('rounds/:round/updates')
  @HttpCode(201)
  @ApiOperation({
    summary:
      "Submit this participant's trained weights for the round as a " +
      'weights file body, with the number of training rows. One update per ' +
      'round.',
  })
  @ApiConsumes(WEIGHTS_CONTENT_TYPE, 'application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiQuery({ name: 'sampleCount', required: true })
  async update(
    @Param('runId') runId: string,
    @Param('round') round: string,
    @Query('sampleCount') sampleCount: string | undefined,
    @Req() request: FastifyRequest,
  ) {
    const participant = await this.participant(runId, request);
    if (!(request.body instanceof Readable)) {
      throw ChorusError.badInput(
        'Content-Type',
        `Send the weights file as the raw body with Content-Type ` +
          `${WEIGHTS_CONTENT_TYPE} or application/octet-stream.`,
      );
    }

    return this.federated.submitUpdate(
      participant,
      Number(round),
      sampleCount,
      request.body,
    );
  }

  private participant(runId: string, request: FastifyRequest) {
    parseId(runId, 'runId');

    return this.federated.authenticate(request.headers.authorization, runId);
  }
}
