/**
 * Schedules: the scheduled functions waiting or running (cancel one, cancel all), and the crons
 * with their schedule, next run and recent runs — live.
 */
import { useState } from 'react'
import { usePaginatedQuery, useQuery } from 'convex/react'
import { adminFetch, argsText, displayPath, errorText, nanosToDate, system, useDeployment } from './lib.ts'
import { LoadMore } from './load-more.tsx'

interface ScheduledJob {
  _id: string
  udfPath: string
  udfArgs: ArrayBuffer
  nextTs: bigint
  state: { type: string }
}

interface CronJob {
  _id: string
  name: string
  cronSpec: { udfPath: string; udfArgs: ArrayBuffer; cronSchedule: Record<string, unknown> & { type: string } }
  nextRun: { nextTs: bigint; prevTs: bigint | null }
  lastRun: CronRun | null
}

interface CronRun {
  _id: string
  name: string
  ts: bigint
  udfPath: string
  status: { type: string; error?: string }
  executionTime: number
}

/** A cron's schedule in words. */
export function scheduleText(s: CronJob['cronSpec']['cronSchedule']): string {
  const two = (n: unknown) => String(n).padStart(2, '0')
  const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
  switch (s.type) {
    case 'interval': {
      const seconds = Number(s.seconds)
      return seconds % 3600 === 0 ? `every ${seconds / 3600} h` : seconds % 60 === 0 ? `every ${seconds / 60} min` : `every ${seconds} s`
    }
    // A schedule without its minute runs at a minute the backend picks within the hour.
    case 'hourly':
      return s.minuteUTC === null ? 'hourly' : `hourly at :${two(s.minuteUTC)} UTC`
    case 'daily':
      return s.minuteUTC === null ? `daily in the ${two(s.hourUTC)}:00 hour UTC` : `daily at ${two(s.hourUTC)}:${two(s.minuteUTC)} UTC`
    case 'weekly':
      return `${DAYS[Number(s.dayOfWeek)] ?? '?'}s ${s.minuteUTC === null ? `in the ${two(s.hourUTC)}:00 hour` : `at ${two(s.hourUTC)}:${two(s.minuteUTC)}`} UTC`
    case 'monthly':
      return `day ${String(s.day)} of each month ${s.minuteUTC === null ? `in the ${two(s.hourUTC)}:00 hour` : `at ${two(s.hourUTC)}:${two(s.minuteUTC)}`} UTC`
    case 'cron':
      return `cron "${String(s.cronExpr)}" (UTC)`
    default:
      return s.type
  }
}

export function SchedulesPage() {
  return (
    <div>
      <ScheduledFunctions />
      <Crons />
    </div>
  )
}

function ScheduledFunctions() {
  const d = useDeployment()
  const { results, status, loadMore } = usePaginatedQuery(system.paginatedScheduledJobs, {}, { initialNumItems: 50 })
  const jobs = results as ScheduledJob[]
  const [error, setError] = useState<string | null>(null)
  const cancel = (id: string) => adminFetch(d, '/api/cancel_job', { body: { id, componentId: null } }).catch((e: unknown) => setError(errorText(e)))
  const cancelAll = () => {
    if (!confirm('Cancel every scheduled function?')) return
    adminFetch(d, '/api/cancel_all_jobs', { body: { componentId: null } }).catch((e: unknown) => setError(errorText(e)))
  }
  return (
    <section>
      <div className="pane-header">
        <h2>Scheduled functions</h2>
        <button className="danger" onClick={cancelAll} disabled={jobs.length === 0}>
          Cancel all
        </button>
      </div>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {status === 'LoadingFirstPage' ? (
        <p className="muted">Loading…</p>
      ) : jobs.length === 0 ? (
        <p className="muted" data-testid="no-scheduled">
          No scheduled functions waiting or running.
        </p>
      ) : (
        <table className="documents">
          <thead>
            <tr>
              <th>Function</th>
              <th>Arguments</th>
              <th>Runs at</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <tr key={job._id} data-job={job._id}>
                <td className="mono">{displayPath(job.udfPath)}</td>
                <td className="mono small">{argsText(job.udfArgs)}</td>
                <td>{nanosToDate(job.nextTs)}</td>
                <td>{job.state.type}</td>
                <td>
                  <button className="link danger" onClick={() => void cancel(job._id)}>
                    Cancel
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore status={status} loadMore={loadMore} />
    </section>
  )
}

function Crons() {
  const crons = useQuery(system.listCronJobs, {}) as CronJob[] | undefined
  const runs = useQuery(system.listCronJobRuns, {}) as CronRun[] | undefined
  return (
    <section>
      <h2>Crons</h2>
      {crons === undefined ? (
        <p className="muted">Loading…</p>
      ) : crons.length === 0 ? (
        <p className="muted">No crons (convex/crons.ts).</p>
      ) : (
        <table className="documents">
          <thead>
            <tr>
              <th>Name</th>
              <th>Function</th>
              <th>Schedule</th>
              <th>Next run</th>
              <th>Last run</th>
            </tr>
          </thead>
          <tbody>
            {crons.map((c) => (
              <tr key={c._id} data-cron={c.name}>
                <td>{c.name}</td>
                <td className="mono">
                  {displayPath(c.cronSpec.udfPath)} <span className="small muted">{argsText(c.cronSpec.udfArgs)}</span>
                </td>
                <td>{scheduleText(c.cronSpec.cronSchedule)}</td>
                <td>{nanosToDate(c.nextRun.nextTs)}</td>
                <td>{c.lastRun === null ? <span className="muted">never</span> : `${nanosToDate(c.lastRun.ts)} (${c.lastRun.status.type})`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Recent cron runs</h3>
      {runs === undefined ? (
        <p className="muted">Loading…</p>
      ) : runs.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <table className="documents">
          <thead>
            <tr>
              <th>Cron</th>
              <th>Function</th>
              <th>Finished</th>
              <th>Status</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {[...runs].reverse().slice(0, 50).map((r) => (
              <tr key={r._id}>
                <td>{r.name}</td>
                <td className="mono">{displayPath(r.udfPath)}</td>
                <td>{nanosToDate(r.ts)}</td>
                <td className={r.status.type === 'err' ? 'error' : ''}>{r.status.type === 'err' ? `error: ${r.status.error ?? ''}` : r.status.type}</td>
                <td>{(r.executionTime * 1000).toFixed(0)} ms</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
