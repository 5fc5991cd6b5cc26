/**
 * Functions: every pushed module and its functions (kind, visibility, argument validator), live.
 * Run one with JSON arguments as admin, or acting as a user identity, and see its result or error
 * and its log lines. Runs go through the sync socket as Convex's dashboard runs them (the client's
 * mutationInternal / actionInternal; a query is subscribed once and read).
 */
import { useEffect, useMemo, useRef, useState } from 'react'
import { useQuery } from 'convex/react'
import { ConvexReactClient } from 'convex/react'
import { makeFunctionReference } from 'convex/server'
import type { UserIdentityAttributes } from 'convex/server'
import type { Value } from 'convex/values'
import { asAdmin, errorText, parseValue, system, toJsonText, useComponent, useDeployment } from './lib.ts'
import { ComponentPicker } from './component-picker.tsx'

interface ModuleFunction {
  name: string
  udfType: 'Query' | 'Mutation' | 'Action' | 'HttpAction'
  visibility: { kind: 'public' | 'internal' } | null
}
type Modules = Array<[string, { functions: ModuleFunction[] }]>

interface Outcome {
  success: boolean
  value?: Value
  errorMessage?: string
  logLines: string[]
  ms: number
}

/** `notes.js` + `add` → `notes:add`; a default export is the module's name alone. */
function identifier(modulePath: string, name: string): string {
  const mod = modulePath.replace(/\.js$/, '')
  return name === 'default' ? mod : `${mod}:${name}`
}

export function FunctionsPage() {
  const { component } = useComponent()
  return <Functions key={component.path} />
}

function Functions() {
  const { component } = useComponent()
  const modules = useQuery(system.modules, { componentId: component.id }) as Modules | undefined
  const [selected, setSelected] = useState<{ id: string; fn: ModuleFunction } | null>(null)
  const all = useMemo(() => (modules ?? []).flatMap(([path, m]) => m.functions.map((fn) => ({ id: identifier(path, fn.name), module: path, fn }))), [modules])
  const current = selected === null ? null : (all.find((f) => f.id === selected.id && f.fn.udfType === selected.fn.udfType) ?? null)
  return (
    <div className="split">
      <aside className="list-pane">
        <ComponentPicker />
        <h2>Functions</h2>
        {modules === undefined ? (
          <p className="muted">Loading…</p>
        ) : modules.length === 0 ? (
          <p className="muted">Nothing pushed yet: run npx convex deploy.</p>
        ) : (
          modules.map(([path, m]) => (
            <div key={path} className="module">
              <div className="module-name mono">{path}</div>
              <ul>
                {m.functions.map((fn) => {
                  const id = identifier(path, fn.name)
                  return (
                    <li key={fn.name}>
                      <button className={`fn-link ${current?.id === id ? 'active' : ''}`} data-function={id} onClick={() => setSelected({ id, fn })}>
                        <span className="mono">{fn.name}</span>
                        <span className={`badge ${fn.udfType.toLowerCase()}`}>{fn.udfType}</span>
                        {fn.visibility?.kind === 'internal' && <span className="badge internal">internal</span>}
                      </button>
                    </li>
                  )
                })}
              </ul>
            </div>
          ))
        )}
      </aside>
      <section className="main-pane">{current === null ? <p className="muted">Choose a function to see its arguments and run it.</p> : <FunctionDetail key={`${current.id}/${current.fn.udfType}`} id={current.id} fn={current.fn} />}</section>
    </div>
  )
}

/** A validator (Convex's JSON form) as the `v.` expression that made it. */
export function validatorText(v: any): string {
  if (v === null || typeof v !== 'object') return String(v)
  switch (v.type) {
    case 'object':
      return `v.object({ ${Object.entries(v.value as Record<string, { fieldType: unknown; optional: boolean }>)
        .map(([k, f]) => `${k}: ${f.optional ? `v.optional(${validatorText(f.fieldType)})` : validatorText(f.fieldType)}`)
        .join(', ')} })`
    case 'array':
      return `v.array(${validatorText(v.value)})`
    case 'record':
      return `v.record(${validatorText(v.keys)}, ${validatorText(v.values?.fieldType ?? v.values)})`
    case 'union':
      return `v.union(${(v.value as unknown[]).map(validatorText).join(', ')})`
    case 'literal':
      return `v.literal(${JSON.stringify(v.value)})`
    case 'id':
      return `v.id(${JSON.stringify(v.tableName)})`
    case 'number':
      return 'v.float64()'
    case 'bigint':
      return 'v.int64()'
    default:
      return `v.${v.type}()`
  }
}

function FunctionDetail({ id, fn }: { id: string; fn: ModuleFunction }) {
  const d = useDeployment()
  const { component } = useComponent()
  const validator = useQuery(system.argsValidator, { function: id, componentId: component.id }) as string | null | undefined
  const [args, setArgs] = useState('{}')
  const [actAs, setActAs] = useState(false)
  const [identity, setIdentity] = useState('{\n  "subject": "user-1",\n  "issuer": "https://example.com"\n}')
  const [outcome, setOutcome] = useState<Outcome | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [running, setRunning] = useState(false)
  // The runner's own client: its admin auth may act as a user, which the pages' client must not.
  const runner = useRef<ConvexReactClient | null>(null)
  useEffect(
    () => () => {
      void runner.current?.close()
      runner.current = null
    },
    [],
  )
  const run = async () => {
    setError(null)
    let parsedArgs: Value
    let as: UserIdentityAttributes | undefined
    try {
      parsedArgs = parseValue(args)
      if (parsedArgs === null || typeof parsedArgs !== 'object' || Array.isArray(parsedArgs)) throw new Error('The arguments are a JSON object.')
      if (actAs) {
        const parsed = JSON.parse(identity) as UserIdentityAttributes
        if (parsed === null || typeof parsed !== 'object') throw new Error('The identity is a JSON object.')
        as = parsed
      }
    } catch (e) {
      setError(errorText(e))
      return
    }
    runner.current ??= new ConvexReactClient(d.url, { unsavedChangesWarning: false })
    const client = runner.current
    asAdmin(client).setAdminAuth(d.adminKey, as)
    setRunning(true)
    setOutcome(null)
    const started = performance.now()
    try {
      const result = await runOnce(client, id, fn.udfType, parsedArgs as Record<string, Value>, component.path)
      setOutcome({ ...result, ms: performance.now() - started })
    } catch (e) {
      setOutcome({ success: false, errorMessage: errorText(e), logLines: [], ms: performance.now() - started })
    } finally {
      setRunning(false)
    }
  }
  let validatorView = '…'
  if (validator === null) validatorView = 'none'
  else if (validator !== undefined) {
    try {
      validatorView = validatorText(JSON.parse(validator))
    } catch {
      validatorView = validator
    }
  }
  return (
    <div className="function-detail">
      <div className="pane-header">
        <h2 className="mono">{id}</h2>
        <span className={`badge ${fn.udfType.toLowerCase()}`}>{fn.udfType}</span>
        <span className="badge">{fn.visibility?.kind ?? 'public'}</span>
      </div>
      <p>
        Arguments: <code data-testid="args-validator">{validatorView}</code>
      </p>
      {fn.udfType === 'HttpAction' ? (
        <p className="muted">HTTP actions run from their route on the HTTP actions URL.</p>
      ) : (
        <>
          <label className="block">
            Arguments (JSON)
            <textarea name="args" value={args} onChange={(e) => setArgs(e.target.value)} rows={5} spellCheck={false} />
          </label>
          <label className="checkbox">
            <input type="checkbox" checked={actAs} onChange={(e) => setActAs(e.target.checked)} /> Act as a user
          </label>
          {actAs && (
            <label className="block">
              User identity (JSON: subject, issuer, name, email, …)
              <textarea name="identity" value={identity} onChange={(e) => setIdentity(e.target.value)} rows={5} spellCheck={false} />
            </label>
          )}
          {error !== null && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button onClick={() => void run()} disabled={running}>
            {running ? 'Running…' : `Run ${fn.udfType.toLowerCase()}`}
          </button>
          {outcome !== null && (
            <div className="outcome" data-testid="run-outcome">
              <h3>
                {outcome.success ? 'Result' : 'Error'} <span className="muted small">{outcome.ms.toFixed(0)} ms</span>
              </h3>
              {outcome.success ? (
                <pre className="result" data-testid="run-result">
                  {toJsonText(outcome.value, 2)}
                </pre>
              ) : (
                <pre className="error" data-testid="run-error">
                  {outcome.errorMessage}
                </pre>
              )}
              <h4>Logs</h4>
              {outcome.logLines.length === 0 ? (
                <p className="muted small">No log lines.</p>
              ) : (
                <pre className="logs" data-testid="run-logs">
                  {outcome.logLines.join('\n')}
                </pre>
              )}
            </div>
          )}
        </>
      )}
    </div>
  )
}

/** Runs a function once through `client`: its result or error, and its log lines. */
async function runOnce(client: ConvexReactClient, id: string, udfType: ModuleFunction['udfType'], args: Record<string, Value>, componentPath: string): Promise<Omit<Outcome, 'ms'>> {
  // In a component: the call names its path (the app's own: none), as Convex's dashboard does.
  const path = componentPath === '' ? undefined : componentPath
  if (udfType === 'Mutation') return asAdmin(client).sync.mutationInternal(id, args, undefined, path)
  if (udfType === 'Action') return asAdmin(client).sync.actionInternal(id, args, path)
  // A query: subscribed until its first result, then unsubscribed.
  const watch = client.watchQuery(makeFunctionReference<'query'>(id), args, path === undefined ? {} : ({ componentPath: path } as object)) as ReturnType<ConvexReactClient['watchQuery']> & { localQueryLogs(): string[] | undefined }
  return new Promise((resolve) => {
    let unsubscribe: (() => void) | null = null
    const check = () => {
      let outcome: Omit<Outcome, 'ms'> | null = null
      try {
        const value = watch.localQueryResult()
        if (value !== undefined) outcome = { success: true, value, logLines: watch.localQueryLogs() ?? [] }
      } catch (e) {
        outcome = { success: false, errorMessage: errorText(e), logLines: watch.localQueryLogs() ?? [] }
      }
      if (outcome === null) return
      unsubscribe?.()
      unsubscribe = () => {}
      resolve(outcome)
    }
    unsubscribe = watch.onUpdate(check)
    check()
  })
}
