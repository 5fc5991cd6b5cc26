/**
 * Settings → Export and import, as `npx convex export` / `npx convex import` do them: an export
 * is requested (`POST /api/export/request/zip`) and followed live through
 * `_system/cli/exports:getLatest` until its zip can be downloaded (`GET /api/export/zip/<ts>`);
 * an import is uploaded in parts (`/api/import/start_upload`, `upload_part`, `finish_upload`),
 * followed live through `_system/cli/queryImport`, confirmed (`/api/perform_import`) once the
 * deployment has checked it, and followed to completed or failed.
 */
import { useState } from 'react'
import { useQuery } from 'convex/react'
import { adminFetch, cli, errorText, nanosToDate, useDeployment } from './lib.ts'
import type { Deployment } from './lib.ts'

type ExportState = null | { state: 'requested' | 'in_progress' } | { state: 'completed'; start_ts: bigint; complete_ts: bigint } | { state: 'failed'; error_message: string }

type ImportState =
  | { state: 'uploaded' }
  | { state: 'waiting_for_confirmation'; message_to_confirm: string }
  | { state: 'in_progress'; progress_message?: string; checkpoint_messages?: string[] }
  | { state: 'completed'; num_rows_written: bigint | number }
  | { state: 'failed'; error_message: string }

/** Upload parts of 8 MiB (the deployment takes up to 512 MiB a part). */
const PART_BYTES = 8 * 1024 * 1024

const FORMATS = [
  ['zip', 'ZIP snapshot (npx convex export)'],
  ['jsonLines', 'JSON lines (one document a line)'],
  ['jsonArray', 'JSON array'],
  ['csv', 'CSV'],
] as const

const MODES = [
  ['requireEmpty', 'Only into empty tables'],
  ['append', 'Append'],
  ['replace', 'Replace the tables imported'],
  ['replaceAll', 'Replace all tables'],
] as const

/** The format a file's name suggests. */
function formatOf(name: string): string {
  if (/\.zip$/i.test(name)) return 'zip'
  if (/\.jsonl$/i.test(name)) return 'jsonLines'
  if (/\.json$/i.test(name)) return 'jsonArray'
  if (/\.csv$/i.test(name)) return 'csv'
  return 'jsonLines'
}

export function ExportImport() {
  return (
    <section>
      <h2>Export and import</h2>
      <Export />
      <Import />
    </section>
  )
}

function Export() {
  const d = useDeployment()
  const latest = useQuery(cli.latestExport, {}) as ExportState | undefined
  const [includeStorage, setIncludeStorage] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const running = latest?.state === 'requested' || latest?.state === 'in_progress'
  const request = async () => {
    setError(null)
    try {
      await adminFetch(d, `/api/export/request/zip?includeStorage=${includeStorage}`, { method: 'POST' })
    } catch (e) {
      setError(errorText(e))
    }
  }
  return (
    <div className="snapshot" data-testid="export">
      <h3>Export</h3>
      <div className="inline-form">
        <label className="checkbox">
          <input type="checkbox" checked={includeStorage} onChange={(e) => setIncludeStorage(e.target.checked)} /> Include file storage
        </label>
        <button onClick={() => void request()} disabled={running || latest === undefined}>
          Export a snapshot
        </button>
      </div>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="small">
        Latest export: <strong data-testid="export-state">{latest === undefined ? '…' : latest === null ? 'none' : latest.state.replace('_', ' ')}</strong>
        {latest?.state === 'completed' && <span className="muted"> (snapshot of {nanosToDate(latest.start_ts)})</span>}
        {latest?.state === 'failed' && <span className="error"> {latest.error_message}</span>}
      </p>
      {latest?.state === 'completed' && <Download deployment={d} ts={String(latest.start_ts)} onError={setError} />}
    </div>
  )
}

/** The zip needs the admin key in a header, so it is fetched here and handed to the browser as a file. */
function Download({ deployment, ts, onError }: { deployment: Deployment; ts: string; onError: (e: string) => void }) {
  const [busy, setBusy] = useState(false)
  const download = async () => {
    setBusy(true)
    try {
      const blob = await (await adminFetch(deployment, `/api/export/zip/${ts}`)).blob()
      const url = URL.createObjectURL(blob)
      const a = document.createElement('a')
      a.href = url
      a.download = `snapshot_${ts}.zip`
      document.body.append(a)
      a.click()
      a.remove()
      setTimeout(() => URL.revokeObjectURL(url), 60_000)
    } catch (e) {
      onError(errorText(e))
    } finally {
      setBusy(false)
    }
  }
  return (
    <button className="secondary" onClick={() => void download()} disabled={busy}>
      {busy ? 'Downloading…' : 'Download the zip'}
    </button>
  )
}

function Import() {
  const d = useDeployment()
  const [file, setFile] = useState<File | null>(null)
  const [format, setFormat] = useState('zip')
  const [mode, setMode] = useState('requireEmpty')
  const [tableName, setTableName] = useState('')
  const [uploaded, setUploaded] = useState<{ done: number; total: number } | null>(null)
  const [importId, setImportId] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const start = async () => {
    if (file === null) return
    setError(null)
    setImportId(null)
    try {
      const { uploadToken } = (await (await adminFetch(d, '/api/import/start_upload', { method: 'POST' })).json()) as { uploadToken: string }
      const partTokens: string[] = []
      setUploaded({ done: 0, total: file.size })
      for (let offset = 0, part = 1; offset < file.size || part === 1; offset += PART_BYTES, part++) {
        const chunk = file.slice(offset, offset + PART_BYTES)
        const res = await fetch(`${d.url}/api/import/upload_part?uploadToken=${encodeURIComponent(uploadToken)}&partNumber=${part}`, {
          method: 'POST',
          headers: { authorization: `Convex ${d.adminKey}`, 'content-type': 'application/octet-stream' },
          body: chunk,
        })
        if (!res.ok) throw new Error(`Uploading part ${part} failed: ${await res.text()}`)
        partTokens.push((await res.json()) as string)
        setUploaded({ done: Math.min(file.size, offset + chunk.size), total: file.size })
      }
      const body = {
        import: { format, mode, ...(format === 'zip' ? {} : { tableName: tableName.trim() }) },
        uploadToken,
        partTokens,
      }
      const { importId } = (await (await adminFetch(d, '/api/import/finish_upload', { body })).json()) as { importId: string }
      setImportId(importId)
    } catch (e) {
      setError(errorText(e))
    }
  }
  return (
    <div className="snapshot" data-testid="import">
      <h3>Import</h3>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault()
          void start()
        }}
      >
        <input
          type="file"
          name="importFile"
          onChange={(e) => {
            const f = e.target.files?.[0] ?? null
            setFile(f)
            if (f !== null) setFormat(formatOf(f.name))
          }}
        />
        <select name="importFormat" aria-label="Format" value={format} onChange={(e) => setFormat(e.target.value)}>
          {FORMATS.map(([k, label]) => (
            <option key={k} value={k}>
              {label}
            </option>
          ))}
        </select>
        {format !== 'zip' && <input name="importTable" placeholder="table name" value={tableName} onChange={(e) => setTableName(e.target.value)} />}
        <select name="importMode" aria-label="Mode" value={mode} onChange={(e) => setMode(e.target.value)}>
          {MODES.map(([k, label]) => (
            <option key={k} value={k}>
              {label}
            </option>
          ))}
        </select>
        <button type="submit" disabled={file === null || (format !== 'zip' && tableName.trim() === '')}>
          Upload
        </button>
      </form>
      {uploaded !== null && (
        <p className="small">
          Uploaded <span data-testid="upload-progress">{Math.round((uploaded.total === 0 ? 1 : uploaded.done / uploaded.total) * 100)}%</span> of {uploaded.total} bytes
        </p>
      )}
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {importId !== null && <ImportProgress key={importId} importId={importId} />}
    </div>
  )
}

function ImportProgress({ importId }: { importId: string }) {
  const d = useDeployment()
  const state = useQuery(cli.queryImport, { importId }) as { state: ImportState } | undefined
  const [error, setError] = useState<string | null>(null)
  const [confirming, setConfirming] = useState(false)
  const s = state?.state
  const confirm = async () => {
    setConfirming(true)
    setError(null)
    try {
      await adminFetch(d, '/api/perform_import', { body: { importId } })
    } catch (e) {
      setError(errorText(e))
      setConfirming(false)
    }
  }
  return (
    <div className="import-progress">
      <p className="small">
        Import: <strong data-testid="import-state">{s === undefined ? '…' : s.state.replace(/_/g, ' ')}</strong>
        {s?.state === 'completed' && (
          <span>
            {' '}
            — <span data-testid="import-rows">{String(s.num_rows_written)}</span> documents written
          </span>
        )}
        {s?.state === 'in_progress' && s.progress_message !== undefined && <span className="muted"> {s.progress_message}</span>}
      </p>
      {s?.state === 'waiting_for_confirmation' && (
        <div>
          <pre className="small" data-testid="import-summary">
            {s.message_to_confirm}
          </pre>
          <button onClick={() => void confirm()} disabled={confirming}>
            Confirm import
          </button>
        </div>
      )}
      {s?.state === 'failed' && (
        <pre className="error" role="alert">
          {s.error_message}
        </pre>
      )}
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  )
}
