/**
 * Settings: environment variables (add, edit, delete through /api/update_environment_variables),
 * the deployment's URLs and version, pausing it (/api/v1/pause_deployment), its auth providers, and the pushed schema with each table's
 * indexes and their state — live; export and import with their progress (snapshots.tsx).
 */
import { useState } from 'react'
import { useQuery } from 'convex/react'
import { adminFetch, errorText, system, useDeployment } from './lib.ts'
import { ExportImport } from './snapshots.tsx'

interface EnvVar {
  name: string
  value: string
}

export function SettingsPage() {
  return (
    <div>
      <EnvironmentVariables />
      <Urls />
      <PauseDeployment />
      <AuthProviders />
      <Schema />
      <ExportImport />
    </div>
  )
}

function EnvironmentVariables() {
  const d = useDeployment()
  const vars = useQuery(system.listEnvironmentVariables, {}) as EnvVar[] | undefined
  const [editing, setEditing] = useState<string | null>(null)
  const [draft, setDraft] = useState({ name: '', value: '' })
  const [error, setError] = useState<string | null>(null)
  const apply = async (changes: Array<{ name: string; value: string | null }>): Promise<boolean> => {
    setError(null)
    try {
      await adminFetch(d, '/api/update_environment_variables', { body: { changes } })
      return true
    } catch (e) {
      setError(errorText(e))
      return false
    }
  }
  return (
    <section>
      <h2>Environment variables</h2>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {vars === undefined ? (
        <p className="muted">Loading…</p>
      ) : (
        <table className="documents env-vars">
          <tbody>
            {vars.map((v) => (
              <tr key={v.name} data-env={v.name}>
                <td className="mono">{v.name}</td>
                <td className="mono">
                  {editing === v.name ? (
                    <form
                      className="inline-form"
                      onSubmit={(e) => {
                        e.preventDefault()
                        void apply([{ name: v.name, value: draft.value }]).then((ok) => ok && setEditing(null))
                      }}
                    >
                      <input name="envValue" value={draft.value} onChange={(e) => setDraft({ ...draft, value: e.target.value })} autoFocus />
                      <button type="submit">Save</button>
                      <button type="button" className="secondary" onClick={() => setEditing(null)}>
                        Cancel
                      </button>
                    </form>
                  ) : (
                    v.value
                  )}
                </td>
                <td className="row-actions">
                  <button className="link" onClick={() => (setEditing(v.name), setDraft({ name: v.name, value: v.value }))}>
                    Edit
                  </button>
                  <button className="link danger" onClick={() => confirm(`Delete ${v.name}?`) && void apply([{ name: v.name, value: null }])}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <AddVariable apply={apply} />
    </section>
  )
}

function AddVariable({ apply }: { apply: (changes: Array<{ name: string; value: string }>) => Promise<boolean> }) {
  const [name, setName] = useState('')
  const [value, setValue] = useState('')
  return (
    <form
      className="inline-form"
      aria-label="Add environment variable"
      onSubmit={(e) => {
        e.preventDefault()
        void apply([{ name: name.trim(), value }]).then((ok) => {
          if (ok) {
            setName('')
            setValue('')
          }
        })
      }}
    >
      <input name="newEnvName" placeholder="NAME" value={name} onChange={(e) => setName(e.target.value)} />
      <input name="newEnvValue" placeholder="value" value={value} onChange={(e) => setValue(e.target.value)} />
      <button type="submit" disabled={name.trim() === ''}>
        Add variable
      </button>
    </form>
  )
}

/** Pause or resume the deployment (`/api/v1/pause_deployment`), its state live from `backendState`. */
function PauseDeployment() {
  const d = useDeployment()
  const state = useQuery(system.backendState, {}) as { user: string } | undefined
  const [error, setError] = useState<string | null>(null)
  const paused = state?.user === 'paused'
  const toggle = async () => {
    setError(null)
    if (!paused && !window.confirm("Pause the deployment? Its functions won't run, scheduled functions wait, crons are skipped until it is resumed.")) return
    try {
      await adminFetch(d, paused ? '/api/v1/unpause_deployment' : '/api/v1/pause_deployment', { method: 'POST' })
    } catch (e) {
      setError(errorText(e))
    }
  }
  return (
    <section>
      <h2>Pause deployment</h2>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p data-testid="deployment-state">{state === undefined ? '…' : paused ? 'Paused: functions fail, scheduled functions wait, crons are skipped.' : 'Running.'}</p>
      {state !== undefined && (
        <button type="button" onClick={() => void toggle()}>
          {paused ? 'Resume deployment' : 'Pause deployment'}
        </button>
      )}
    </section>
  )
}

function Urls() {
  const cloud = useQuery(system.convexCloudUrl, {}) as string | undefined
  const site = useQuery(system.convexSiteUrl, {}) as string | undefined
  const version = useQuery(system.getVersion, {}) as string | undefined
  return (
    <section>
      <h2>URLs and deploy keys</h2>
      <dl className="facts">
        <dt>Deployment URL</dt>
        <dd className="mono" data-testid="cloud-url">
          {cloud ?? '…'}
        </dd>
        <dt>HTTP actions URL</dt>
        <dd className="mono" data-testid="site-url">
          {site ?? '…'}
        </dd>
        <dt>Backend version</dt>
        <dd className="mono">{version ?? '…'}</dd>
      </dl>
      <p className="muted small">
        Push from an app with <code>CONVEX_SELF_HOSTED_URL</code> set to the deployment URL and <code>CONVEX_SELF_HOSTED_ADMIN_KEY</code> to the admin key.
      </p>
    </section>
  )
}

function AuthProviders() {
  const providers = useQuery(system.listAuthProviders, {}) as Array<Record<string, unknown>> | undefined
  return (
    <section>
      <h2>Authentication</h2>
      {providers === undefined ? (
        <p className="muted">Loading…</p>
      ) : providers.length === 0 ? (
        <p className="muted">No auth providers (convex/auth.config.ts).</p>
      ) : (
        <ul>
          {providers.map((p, i) => (
            <li key={i} className="mono small">
              {JSON.stringify(p)}
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

function Schema() {
  const schemas = useQuery(system.getSchemas, {}) as { active?: string } | undefined
  const mapping = useQuery(system.getTableMapping, {}) as Record<string, string> | undefined
  const tables = mapping === undefined ? [] : Object.values(mapping).filter((n) => !n.startsWith('_')).sort()
  let schema: string | null = null
  if (schemas?.active !== undefined) {
    try {
      schema = JSON.stringify(JSON.parse(schemas.active), null, 2)
    } catch {
      schema = schemas.active
    }
  }
  return (
    <section>
      <h2>Schema and indexes</h2>
      {tables.map((t) => (
        <TableIndexes key={t} table={t} />
      ))}
      <details>
        <summary>Pushed schema (JSON)</summary>
        {schemas === undefined ? <p className="muted">Loading…</p> : schema === null ? <p className="muted">No schema pushed.</p> : <pre className="small">{schema}</pre>}
      </details>
    </section>
  )
}

function TableIndexes({ table }: { table: string }) {
  const indexes = useQuery(system.indexes, { tableName: table }) as Array<{ name: string; fields: unknown; staged: boolean; backfill: { state: string } }> | null | undefined
  return (
    <div className="table-indexes">
      <h4 className="mono">{table}</h4>
      {indexes === undefined ? (
        <p className="muted small">…</p>
      ) : indexes === null || indexes.length === 0 ? (
        <p className="muted small">No indexes.</p>
      ) : (
        <ul>
          {indexes.map((i) => (
            <li key={i.name} className="small">
              <span className="mono">{i.name}</span> <span className="mono muted">{JSON.stringify(i.fields)}</span> <span className="badge">{i.backfill.state}</span>
              {i.staged && <span className="badge">staged</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
