/**
 * Logs: a live tail of function executions from `/api/stream_function_logs` (the route
 * `npx convex logs` long-polls): each with its console lines, error and duration; filtered by
 * function, kind, status and log level; paused and resumed.
 */
import { useEffect, useRef, useState } from 'react'
import { errorText, useDeployment } from './lib.ts'

interface LogLine {
  messages: string[]
  level: string
  timestamp: number
}

interface Entry {
  kind: string
  udfType: string
  identifier: string
  componentPath: string | null
  logLines: LogLine[]
  timestamp: number
  executionTime: number
  error: string | null
  requestId: string
  executionId: string
}

const KEEP = 1000

export function LogsPage() {
  const d = useDeployment()
  const [entries, setEntries] = useState<Entry[]>([])
  const [paused, setPaused] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [fnFilter, setFnFilter] = useState('')
  const [kind, setKind] = useState('')
  const [status, setStatus] = useState('')
  const [level, setLevel] = useState('')
  const pausedRef = useRef(paused)
  pausedRef.current = paused
  const buffered = useRef<Entry[]>([])

  useEffect(() => {
    const abort = new AbortController()
    let cursor = 0
    void (async () => {
      while (!abort.signal.aborted) {
        try {
          const res = await fetch(`${d.url}/api/stream_function_logs?cursor=${cursor}`, { headers: { authorization: `Convex ${d.adminKey}` }, signal: abort.signal })
          if (!res.ok) throw new Error(`${res.status} ${await res.text()}`)
          const body = (await res.json()) as { entries: Entry[]; newCursor: number }
          cursor = body.newCursor
          setError(null)
          const fresh = body.entries.filter((e) => e.kind === 'Completion' && !e.identifier.startsWith('_system/'))
          if (fresh.length === 0) continue
          if (pausedRef.current) buffered.current.push(...fresh)
          else setEntries((old) => [...old, ...fresh].slice(-KEEP))
        } catch (e) {
          if (abort.signal.aborted) return
          setError(errorText(e))
          // The backend went away: try again shortly (not in a tight loop).
          await new Promise((r) => setTimeout(r, 2000))
        }
      }
    })()
    return () => abort.abort()
  }, [d.url, d.adminKey])

  const resume = () => {
    setEntries((old) => [...old, ...buffered.current].slice(-KEEP))
    buffered.current = []
    setPaused(false)
  }
  const shown = entries
    .filter((e) => fnFilter === '' || e.identifier.includes(fnFilter))
    .filter((e) => kind === '' || e.udfType === kind)
    .filter((e) => status === '' || (status === 'failure') === (e.error !== null))
    .filter((e) => level === '' || e.logLines.some((l) => l.level === level))
    .reverse()
  return (
    <div>
      <div className="pane-header">
        <h2>Logs</h2>
        <div className="actions">
          {paused ? <button onClick={resume}>Resume</button> : <button className="secondary" onClick={() => setPaused(true)}>Pause</button>}
          <button className="secondary" onClick={() => setEntries([])}>
            Clear
          </button>
        </div>
      </div>
      <div className="filter-bar">
        <input placeholder="function" value={fnFilter} onChange={(e) => setFnFilter(e.target.value)} aria-label="Function filter" />
        <select value={kind} onChange={(e) => setKind(e.target.value)} aria-label="Kind">
          <option value="">all kinds</option>
          <option value="Query">queries</option>
          <option value="Mutation">mutations</option>
          <option value="Action">actions</option>
          <option value="HttpAction">HTTP actions</option>
        </select>
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="Status">
          <option value="">any status</option>
          <option value="success">success</option>
          <option value="failure">failure</option>
        </select>
        <select value={level} onChange={(e) => setLevel(e.target.value)} aria-label="Log level">
          <option value="">any level</option>
          <option value="DEBUG">debug</option>
          <option value="INFO">info</option>
          <option value="LOG">log</option>
          <option value="WARN">warn</option>
          <option value="ERROR">error</option>
        </select>
        {paused && <span className="muted small">paused, {buffered.current.length} new</span>}
      </div>
      {error !== null && <p className="error">{error}</p>}
      {shown.length === 0 ? (
        <p className="muted">Waiting for function executions…</p>
      ) : (
        <table className="documents logs-table">
          <thead>
            <tr>
              <th>Time</th>
              <th>Function</th>
              <th>Kind</th>
              <th>Duration</th>
              <th>Output</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.executionId} className={e.error !== null ? 'failed' : ''} data-log={e.identifier}>
                <td className="small">{new Date(e.timestamp * 1000).toLocaleTimeString()}</td>
                <td className="mono">{e.componentPath === null ? e.identifier : `${e.componentPath}/${e.identifier}`}</td>
                <td>{e.udfType}</td>
                <td>{(e.executionTime * 1000).toFixed(0)} ms</td>
                <td className="mono small">
                  {e.logLines.map((l, i) => (
                    <div key={i} className={`level-${l.level.toLowerCase()}`}>
                      [{l.level}] {l.messages.join(' ')}
                    </div>
                  ))}
                  {e.error !== null && <div className="error">{e.error}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}
