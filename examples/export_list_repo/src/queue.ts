import type { Job, JobHandler, JobId, JobOptions, QueueListener, Unsubscribe, WorkerOptions } from './types'

/** An in-memory job queue: enqueue payloads, run them with a handler, listen to what happens. */
export class JobQueue {
  private jobs: Array<Job> = []
  private listeners = new Set<QueueListener>()
  private nextId = 1

  enqueue<TPayload>(payload: TPayload, options: JobOptions = {}): JobId {
    const id = String(this.nextId++)
    this.jobs.push({ id, status: 'queued', payload, options })
    this.listeners.forEach((listener) => listener('enqueued', id))
    return id
  }

  subscribe(listener: QueueListener): Unsubscribe {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async work(handler: JobHandler, options: WorkerOptions): Promise<void> {
    const batch = this.jobs.filter((job) => job.status === 'queued').slice(0, options.concurrency)
    await Promise.all(batch.map((job) => this.run(job, handler)))
  }

  private async run(job: Job, handler: JobHandler): Promise<void> {
    job.status = 'running'
    this.listeners.forEach((listener) => listener('started', job.id))
    try {
      await handler(job)
      job.status = 'done'
    } catch {
      job.status = 'failed'
    }
    this.listeners.forEach((listener) => listener('finished', job.id))
  }
}
