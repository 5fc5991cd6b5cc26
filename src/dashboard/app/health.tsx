/**
 * Health: the backend's own metrics (`/api/concave/metrics`) sampled every 2 s, as charts over
 * the last five minutes: requests and function executions per second and their mean durations,
 * sync sessions, live subscriptions, subscription re-runs per second, isolates, memory.
 */
import { useEffect, useState } from 'react'
import { adminFetch, errorText, formatBytes, useDeployment } from './lib.ts'

type Metrics = Record<string, number>
interface Sample {
  at: number
  m: Metrics
}

const EVERY_MS = 2000
const WINDOW_MS = 5 * 60 * 1000

/** A counter's growth per second between the previous sample and this one. */
const rate =
  (key: string) =>
  (s: Sample, p: Sample | undefined): number | null =>
    p === undefined || s.m[key] === undefined || p.m[key] === undefined ? null : ((s.m[key] - p.m[key]) * 1000) / (s.at - p.at)

/** The mean of what happened between two samples: a summed figure's growth over a count's (none: 0). */
const mean =
  (sum: string, count: string) =>
  (s: Sample, p: Sample | undefined): number | null => {
    if (p === undefined || [s.m[sum], s.m[count], p.m[sum], p.m[count]].some((v) => v === undefined)) return null
    const n = s.m[count]! - p.m[count]!
    return n === 0 ? 0 : (s.m[sum]! - p.m[sum]!) / n
  }

const perSecond = (n: number) => n.toFixed(1)
const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 0)} ms`

const CHARTS: Array<{ title: string; value: (s: Sample, prev: Sample | undefined) => number | null; format: (n: number) => string }> = [
  { title: 'Requests per second', value: rate('requests'), format: perSecond },
  { title: 'Mean request duration', value: mean('requestMs', 'requests'), format: ms },
  { title: 'Function executions per second', value: rate('functionExecutions'), format: perSecond },
  { title: 'Mean function duration', value: mean('functionExecutionMs', 'functionExecutions'), format: ms },
  { title: 'Function failures per second', value: rate('functionFailures'), format: perSecond },
  { title: 'Sync sessions (open sockets)', value: (s) => s.m.syncSessions ?? null, format: (n) => String(Math.round(n)) },
  { title: 'Live subscriptions', value: (s) => s.m.subscriptionEntries ?? null, format: (n) => String(Math.round(n)) },
  { title: 'Subscription re-runs per second', value: rate('subscriptionRuns'), format: perSecond },
  { title: 'Isolates', value: (s) => s.m.isolates ?? null, format: (n) => String(Math.round(n)) },
  { title: 'Heap used', value: (s) => s.m.heapUsedBytes ?? null, format: formatBytes },
  { title: 'Resident memory', value: (s) => s.m.rssBytes ?? null, format: formatBytes },
  { title: 'Database size', value: (s) => s.m.databaseBytes ?? null, format: formatBytes },
]

export function HealthPage() {
  const d = useDeployment()
  const [samples, setSamples] = useState<Sample[]>([])
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let stopped = false
    const sample = async () => {
      try {
        const m = (await (await adminFetch(d, '/api/concave/metrics')).json()) as Metrics
        if (stopped) return
        const at = Date.now()
        setSamples((old) => [...old.filter((s) => s.at > at - WINDOW_MS), { at, m }])
        setError(null)
      } catch (e) {
        if (!stopped) setError(errorText(e))
      }
    }
    void sample()
    const timer = setInterval(() => void sample(), EVERY_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [d])
  return (
    <div>
      <h2>Health</h2>
      {error !== null && <p className="error">{error}</p>}
      <div className="charts">
        {CHARTS.map((c) => {
          const points = samples.map((s, i) => ({ at: s.at, v: c.value(s, samples[i - 1]) })).filter((p): p is { at: number; v: number } => p.v !== null && Number.isFinite(p.v))
          return <Chart key={c.title} title={c.title} points={points} format={c.format} />
        })}
      </div>
    </div>
  )
}

function Chart({ title, points, format }: { title: string; points: Array<{ at: number; v: number }>; format: (n: number) => string }) {
  const W = 300
  const H = 80
  const last = points.at(-1)
  const max = Math.max(1e-9, ...points.map((p) => p.v))
  const now = last?.at ?? Date.now()
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${(((p.at - (now - WINDOW_MS)) / WINDOW_MS) * W).toFixed(1)},${(H - (p.v / max) * (H - 4) - 2).toFixed(1)}`).join(' ')
  return (
    <figure className="chart">
      <figcaption>
        {title}: <strong>{last === undefined ? '…' : format(last.v)}</strong> <span className="muted small">max {format(max)}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-label={title}>
        <path d={path} fill="none" stroke="currentColor" strokeWidth="1.5" />
      </svg>
    </figure>
  )
}
