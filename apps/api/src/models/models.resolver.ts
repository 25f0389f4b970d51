import {
  Args,
  ID,
  Int,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';

import { JobCapability } from '#libs/db';
import { ChorusError } from '#libs/errors';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { GraphQLJSON } from '../common/json.scalar';
import { PageArgs, pageComplexity } from '../common/pagination';
import { Job } from '../jobs/job.types';
import {
  CreateModelInput,
  CreateTaskInput,
  JobMetric,
  MetricComparison,
  Model,
  ModelPage,
  ModelVersion,
  Task,
} from './model.types';
import { ModelsService } from './models.service';

@Resolver(() => Model)
export class ModelsResolver {
  constructor(private readonly service: ModelsService) {}

  @Mutation(() => Task)
  @RequireScope('WRITE')
  createTask(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CreateTaskInput,
  ) {
    return this.service.createTask(principal, input);
  }

  @Mutation(() => Model)
  @RequireScope('WRITE')
  createModel(
    @CurrentPrincipal() principal: Principal,
    @Args('input') input: CreateModelInput,
  ) {
    return this.service.createModel(principal, input);
  }

  @Query(() => Model)
  model(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.findModel(principal, id);
  }

  @Query(() => ModelPage, { complexity: pageComplexity })
  models(@CurrentPrincipal() principal: Principal, @Args() page: PageArgs) {
    return this.service.listModels(principal, page);
  }

  @Query(() => ModelVersion)
  modelVersion(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.findVersion(principal, id);
  }

  @Mutation(() => Job, {
    description:
      'Queues training of every head of the model. config: { epochs, ' +
      'batchSize, optimizer, learningRate, balancing, seed, ' +
      'earlyStoppingPatience, clipNorm }, all optional.',
  })
  @RequireScope('WRITE')
  startTraining(
    @CurrentPrincipal() principal: Principal,
    @Args('modelId', { type: () => ID }) modelId: string,
    @Args('config', { type: () => GraphQLJSON, nullable: true })
    config: unknown,
    @Args('capability', {
      type: () => JobCapability,
      nullable: true,
      description:
        'CPU (default) or GPU: only workers that can run it take it.',
    })
    capability?: JobCapability,
    @Args('priority', {
      type: () => Int,
      nullable: true,
      description:
        '-1000 to 1000, default 0: higher runs first. Within one priority, ' +
        'projects take turns (a job goes back one place for each other ' +
        'queued or running job of its project).',
    })
    priority?: number,
  ) {
    return this.service.startTraining(principal, modelId, config, {
      capability,
      priority,
    });
  }

  @Query(() => String, {
    description:
      'A presigned URL to download the artifact zip straight from object storage.',
  })
  artifactUrl(
    @CurrentPrincipal() principal: Principal,
    @Args('versionId', { type: () => ID }) versionId: string,
    @Args('expiresInSeconds', { type: () => Int, nullable: true })
    expiresInSeconds?: number,
  ) {
    return this.service.artifactUrl(
      principal,
      versionId,
      expiresInSeconds ?? 900,
    );
  }

  @Query(() => GraphQLJSON, {
    description:
      'Predictions per task for each row, and an error naming the row and field for each bad row.',
  })
  async predict(
    @CurrentPrincipal() principal: Principal,
    @Args('rows', { type: () => GraphQLJSON }) rows: unknown,
    @Args('versionId', { type: () => ID, nullable: true }) versionId?: string,
    @Args('modelId', { type: () => ID, nullable: true }) modelId?: string,
    @Args('alias', { nullable: true }) alias?: string,
  ) {
    if (!versionId && !(modelId && alias)) {
      throw ChorusError.badInput(
        'versionId',
        'Name the version: versionId, or modelId with alias (such as "production").',
      );
    }
    const id =
      versionId ??
      (await this.service.resolveAlias(principal, modelId!, alias!));

    return this.service.predict(principal, id, rows);
  }

  @Mutation(() => Model, {
    description: 'Sets or moves an alias (such as production) to a version.',
  })
  @RequireScope('WRITE')
  setModelAlias(
    @CurrentPrincipal() principal: Principal,
    @Args('modelId', { type: () => ID }) modelId: string,
    @Args('alias') alias: string,
    @Args('versionId', { type: () => ID }) versionId: string,
  ) {
    return this.service.setAlias(principal, modelId, alias, versionId);
  }

  @Query(() => [MetricComparison], {
    description: "Two versions' per-task metrics side by side.",
  })
  compareModelVersions(
    @CurrentPrincipal() principal: Principal,
    @Args('a', { type: () => ID }) a: string,
    @Args('b', { type: () => ID }) b: string,
  ) {
    return this.service.compareVersions(principal, a, b);
  }
}

@Resolver(() => Job)
export class JobMetricsResolver {
  constructor(private readonly service: ModelsService) {}

  @ResolveField(() => [JobMetric], {
    description:
      'Per task, split and epoch; training loss and validation metrics.',
  })
  metrics(@Parent() job: Job) {
    return this.service.jobMetrics(job.id);
  }
}
