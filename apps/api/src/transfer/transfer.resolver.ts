import {
  Args,
  Float,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
} from '@nestjs/graphql';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { Job } from '../jobs/job.types';
import { LineageService } from './lineage.service';
import { TransferService } from './transfer.service';
import { FineTuneInput, Lineage, MergeSourceInput } from './transfer.types';

@Resolver()
export class TransferResolver {
  constructor(
    private readonly transfer: TransferService,
    private readonly lineageService: LineageService,
  ) {}

  @Mutation(() => Job, {
    description:
      "Queues a FINE_TUNE job that starts from the base version's backbone " +
      "(and its heads, for tasks it has). The job's result names the new " +
      'version.',
  })
  @RequireScope('WRITE')
  fineTune(
    @CurrentPrincipal() principal: Principal,
    @Args('baseVersionId', { type: () => ID }) baseVersionId: string,
    @Args('input', { type: () => FineTuneInput, nullable: true })
    input?: FineTuneInput,
  ) {
    return this.transfer.fineTune(principal, baseVersionId, input ?? {});
  }

  @Mutation(() => Job, {
    description:
      "Queues a MERGE of versions into a new version of the first source's " +
      'model. strategy: fedavg (weighted by training samples), uniform, ' +
      'median or trimmed-mean. The backbone is merged over every source, ' +
      'each head over the sources that have its task.',
  })
  @RequireScope('WRITE')
  mergeModelVersions(
    @CurrentPrincipal() principal: Principal,
    @Args('sources', { type: () => [MergeSourceInput] })
    sources: MergeSourceInput[],
    @Args('strategy', {
      description: 'fedavg, uniform, median or trimmed-mean.',
    })
    strategy: string,
    @Args('trimRatio', {
      type: () => Float,
      nullable: true,
      description: 'trimmed-mean: share cut from each end; default 0.1.',
    })
    trimRatio?: number,
  ) {
    return this.transfer.merge(principal, { sources, strategy, trimRatio });
  }

  @Query(() => Lineage, {
    description:
      'Where a version came from (base, merge sources, earlier federated ' +
      'rounds) and what was made from it, each with its content hash.',
  })
  modelVersionLineage(
    @CurrentPrincipal() principal: Principal,
    @Args('versionId', { type: () => ID }) versionId: string,
    @Args('maxDepth', { type: () => Int, nullable: true, defaultValue: 20 })
    maxDepth: number,
  ) {
    return this.lineageService.lineage(principal, versionId, maxDepth);
  }
}
