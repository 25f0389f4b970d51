import {
  Args,
  ID,
  Mutation,
  Query,
  Resolver,
  Subscription,
} from '@nestjs/graphql';

import { CurrentPrincipal, RequireScope } from '../auth/decorators';
import { Principal } from '../auth/principal';
import { pageComplexity } from '../common/pagination';
import { JobEventBus } from '../core/job-event-bus';
import { Job, JobEvent, JobListArgs, JobPage } from './job.types';
import type { JobEvent as BusEvent } from '#libs/jobs';
import { JobsService } from './jobs.service';

/** Events travel as JSON; the GraphQL type wants a Date. */
const toJobEvent = (event: BusEvent) => ({ ...event, at: new Date(event.at) });

@Resolver(() => Job)
export class JobsResolver {
  constructor(
    private readonly service: JobsService,
    private readonly events: JobEventBus,
  ) {}

  @Query(() => Job)
  job(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.find(principal, id);
  }

  @Query(() => JobPage, { complexity: pageComplexity })
  jobs(@CurrentPrincipal() principal: Principal, @Args() page: JobListArgs) {
    return this.service.list(principal, page);
  }

  @Mutation(() => Job, {
    description:
      "Queues a job that aborts this project's interrupted uploads now.",
  })
  @RequireScope('ADMIN')
  sweepUploads(@CurrentPrincipal() principal: Principal) {
    return this.service.submit({
      projectId: principal.projectId,
      kind: 'SWEEP_UPLOADS',
      config: {},
    });
  }

  @Mutation(() => Job, {
    description:
      'Cancels a queued or running job; training stops within a batch.',
  })
  @RequireScope('WRITE')
  cancelJob(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.cancel(principal, id);
  }

  @Mutation(() => Job, {
    description:
      'Queues a FAILED or CANCELLED job again; training resumes from its ' +
      'last checkpoint when one is left.',
  })
  @RequireScope('WRITE')
  retryJob(
    @CurrentPrincipal() principal: Principal,
    @Args('id', { type: () => ID }) id: string,
  ) {
    return this.service.retry(principal, id);
  }

  @Subscription(() => JobEvent, {
    description:
      "Every state change and progress report of the project's jobs.",
    resolve: toJobEvent,
  })
  jobEvents(@CurrentPrincipal() principal: Principal) {
    return this.events.events(principal.projectId);
  }

  @Subscription(() => JobEvent, {
    description:
      'State changes and progress of one job. The first event is the ' +
      'job\'s state when the subscription starts (message "current state"), ' +
      'so a client that subscribes after queueing the job misses nothing.',
    resolve: toJobEvent,
  })
  async jobProgress(
    @CurrentPrincipal() principal: Principal,
    @Args('jobId', { type: () => ID }) jobId: string,
  ) {
    await this.service.find(principal, jobId);

    return this.events.events(
      principal.projectId,
      (event) => event.jobId === jobId,
      async () => {
        // Read once the listener is in place: later changes follow it.
        const job = await this.service.find(principal, jobId);

        return {
          projectId: job.projectId,
          jobId: job.id,
          kind: job.kind,
          status: job.status,
          progress: job.progress,
          message: 'current state',
          at: new Date().toISOString(),
        };
      },
    );
  }
}
