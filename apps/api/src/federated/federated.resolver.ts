import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { GraphQLJSON } from '../common/json.scalar';
import { PageArgs, pageComplexity } from '../common/pagination';
import { FederatedService } from './federated.service';
import {
  FederatedParticipantInput,
  FederatedRun,
  FederatedRunPage,
  FederatedRunStart,
} from './federated.types';

@Resolver(() => FederatedRun)
export class FederatedResolver {
  constructor(private readonly federated: FederatedService) {}

  @Mutation(() => FederatedRunStart, {
    description:
      'Starts a federated run of the model over silos (datasets of this ' +
      'project) and external clients. config: { rounds, localEpochs, ' +
      'batchSize, learningRate, fractionPerRound, minClients, ' +
      'roundTimeoutSeconds, strategy: fedavg|fedprox|fedadam|fedyogi, mu, ' +
      'serverLearningRate, aggregate: all|backbone, clipNorm, ' +
      'noiseMultiplier, maxSampleCount, maxUpdateNorm, alias, seed, ' +
      'initialVersionId }, all optional. Round progress arrives as ' +
      'FEDERATED_ROUND job events.',
  })
  @RequireScope('WRITE')
  startFederatedRun(
    @CurrentPrincipal() principal: Principal,
    @Args('modelId', { type: () => ID }) modelId: string,
    @Args('participants', { type: () => [FederatedParticipantInput] })
    participants: FederatedParticipantInput[],
    @Args('config', { type: () => GraphQLJSON, nullable: true })
    config?: unknown,
    @Args('name', { nullable: true }) name?: string,
  ) {
    return this.federated.start(principal, modelId, participants, config, name);
  }

  @Mutation(() => FederatedRun, {
    description:
      'Stops a running run; its open round fails and the current global version stays.',
  })
  @RequireScope('WRITE')
  stopFederatedRun(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.federated.stop(principal, id);
  }

  @Query(() => FederatedRun)
  federatedRun(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.federated.find(principal, id);
  }

  @Query(() => FederatedRunPage, { complexity: pageComplexity })
  federatedRuns(
    @CurrentPrincipal() principal: Principal,
    @Args() page: PageArgs,
  ) {
    return this.federated.list(principal, page);
  }
}
