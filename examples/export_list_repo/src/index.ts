/* The package's public surface. */

export { JobQueue } from './queue'

// Types
export type {
  JobId,
  JobStatus,
  JobOptions,
  Job,
  RetryDelayFunction,
  RetryPolicy,
  JobHandler,
  QueueEvents,
  QueueListener,
  WorkerOptions,
  Unsubscribe,
} from './types'
