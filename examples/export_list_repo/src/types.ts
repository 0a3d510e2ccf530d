/** Shared types of the job queue client. */

export type JobId = string

export type JobStatus = 'queued' | 'running' | 'done' | 'failed'

export interface JobOptions {
  priority?: number
  retries?: number
  timeoutMs?: number
}

export interface Job<TPayload = unknown> {
  id: JobId
  status: JobStatus
  payload: TPayload
  options: JobOptions
}

export type RetryDelayFunction = (attempt: number, error: unknown) => number

export interface RetryPolicy {
  maxAttempts: number
  delay: RetryDelayFunction
}

export type JobHandler<TPayload = unknown, TResult = unknown> = (
  job: Job<TPayload>,
) => Promise<TResult>

export interface QueueEvents {
  enqueued: JobId
  started: JobId
  finished: JobId
}

export type QueueListener = (event: keyof QueueEvents, id: JobId) => void

export interface WorkerOptions {
  concurrency: number
  pollIntervalMs: number
}

export type Unsubscribe = () => void
