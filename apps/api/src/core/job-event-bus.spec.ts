import type { EventEmitter } from 'node:events';

import { describe, expect, it } from 'vitest';

import type { Env } from '#libs/config';
import type { JobEvent } from '#libs/jobs';

import { JobEventBus } from './job-event-bus';

const event = (jobId: string, status = 'RUNNING'): JobEvent =>
  ({
    projectId: 'p',
    jobId,
    kind: 'TRAIN',
    status,
    progress: 0,
    at: new Date(0).toISOString(),
  }) as JobEvent;

/** A bus that is not listening to Postgres; events are emitted by hand. */
function bus() {
  const instance = new JobEventBus({} as Env);
  const emitter = (instance as unknown as { emitter: EventEmitter }).emitter;

  return { instance, emitter };
}

describe('JobEventBus.events', () => {
  it('delivers events published before the first next(), after the snapshot', async () => {
    const { instance, emitter } = bus();
    const stream = instance.events(
      'p',
      (e) => e.jobId === 'a',
      async () => event('a', 'QUEUED'),
    );
    emitter.emit('p', event('b'));
    emitter.emit('p', event('a'));

    const first = await stream.next();
    const second = await stream.next();

    expect(first.value).toMatchObject({ jobId: 'a', status: 'QUEUED' });
    expect(second.value).toMatchObject({ jobId: 'a', status: 'RUNNING' });
    await stream.return(undefined);
    expect(emitter.listenerCount('p')).toBe(0);
  });

  it('removes its listener when ended before it was read, or while it waits', async () => {
    const { instance, emitter } = bus();
    const unread = instance.events('p');
    const waiting = instance.events('p');
    const pending = waiting.next();
    expect(emitter.listenerCount('p')).toBeGreaterThan(0);

    await unread.return(undefined);
    await waiting.return(undefined);

    expect(await pending).toEqual({ done: true, value: undefined });
    expect(emitter.listenerCount('p')).toBe(0);
  });
});
