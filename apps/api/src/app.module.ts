import { ApolloDriver, ApolloDriverConfig } from '@nestjs/apollo';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { GraphQLModule } from '@nestjs/graphql';
import { ThrottlerModule } from '@nestjs/throttler';
import { LoggerModule } from 'nestjs-pino';

import { Env } from '#libs/config';
import type { PrismaClient } from '#libs/db';

import { AdminBootstrap } from './auth/admin-bootstrap';
import { ApiKeyService } from './auth/api-key.service';
import { AuthGuard } from './auth/auth.guard';
import { CoreModule } from './core/core.module';
import { ENV, PRISMA } from './core/tokens';
import { DatasetsController } from './datasets/datasets.controller';
import { DatasetsResolver } from './datasets/datasets.resolver';
import { DatasetsService } from './datasets/datasets.service';
import { graphqlOptions } from './graphql/graphql.options';
import { FederatedController } from './federated/federated.controller';
import { FederatedResolver } from './federated/federated.resolver';
import { FederatedService } from './federated/federated.service';
import { HealthController } from './health/health.controller';
import { RestErrorFilter } from './http/error.filter';
import { loggerOptions } from './http/logger.options';
import { JobStepWeightsResolver } from './jobs/job-step-weights.resolver';
import { JobsResolver } from './jobs/jobs.resolver';
import { JobsService } from './jobs/jobs.service';
import { ModelsController } from './models/models.controller';
import { JobMetricsResolver, ModelsResolver } from './models/models.resolver';
import { ModelsService } from './models/models.service';
import { PredictorCache } from './models/predictor-cache';
import { ProjectsResolver } from './projects/projects.resolver';
import { ImportController } from './transfer/import.controller';
import { ImportService } from './transfer/import.service';
import { LineageService } from './transfer/lineage.service';
import { TransferResolver } from './transfer/transfer.resolver';
import { TransferService } from './transfer/transfer.service';
import { ProjectsService } from './projects/projects.service';
import { ApiKeyThrottlerGuard } from './rate-limit/api-key-throttler.guard';
import { PostgresThrottlerStorage } from './rate-limit/postgres-throttler.storage';

@Module({})
export class AuthModule {
  static forRoot(): DynamicModule {
    return {
      module: AuthModule,
      global: true,
      providers: [ApiKeyService],
      exports: [ApiKeyService],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(env: Env): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerOptions(env)),
        CoreModule.forRoot(env),
        AuthModule.forRoot(),
        ThrottlerModule.forRootAsync({
          inject: [PRISMA],
          useFactory: (prisma: PrismaClient) => ({
            throttlers: [
              {
                name: 'api-key',
                ttl: env.RATE_LIMIT_WINDOW_SECONDS * 1000,
                limit: env.RATE_LIMIT_REQUESTS,
              },
            ],
            // Counted in Postgres: one budget across API instances.
            storage: new PostgresThrottlerStorage(prisma),
          }),
        }),
        GraphQLModule.forRootAsync<ApolloDriverConfig>({
          driver: ApolloDriver,
          inject: [ENV, ApiKeyService],
          useFactory: graphqlOptions,
        }),
      ],
      controllers: [
        HealthController,
        DatasetsController,
        ModelsController,
        FederatedController,
        ImportController,
      ],
      providers: [
        // Guards run in this order: who is calling, then how often.
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_GUARD, useClass: ApiKeyThrottlerGuard },
        { provide: APP_FILTER, useClass: RestErrorFilter },
        AdminBootstrap,
        DatasetsResolver,
        DatasetsService,
        JobMetricsResolver,
        JobStepWeightsResolver,
        JobsResolver,
        JobsService,
        FederatedResolver,
        FederatedService,
        ImportService,
        LineageService,
        TransferResolver,
        TransferService,
        ModelsResolver,
        ModelsService,
        PredictorCache,
        ProjectsResolver,
        ProjectsService,
      ],
    };
  }
}
