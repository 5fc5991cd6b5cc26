/**
 * Data: the tables with their document counts, and a table's documents, newest first (or oldest),
 * filtered by a field, paginated — all live. Add, edit and delete documents as JSON in Convex's
 * encoding; the deployment checks them against the pushed schema and its error is shown.
 */
import { useState } from 'react'
import { useMutation, usePaginatedQuery, useQuery } from 'convex/react'
import type { Value } from 'convex/values'
import { adminFetch, errorText, parseValue, system, toJsonText, useComponent, useDeployment } from './lib.ts'
import { ComponentPicker } from './component-picker.tsx'
import { LoadMore } from './load-more.tsx'

type Doc = Record<string, Value> & { _id: string; _creationTime: number }

export function DataPage() {
  // Creating an empty table (createTable) or deleting one (/api/delete_tables) is a catalog change
  // that live table lists aren't woken by (no document is written): after either, the page
  // subscribes again.
  const [generation, setGeneration] = useState(0)
  const [chosen, setChosen] = useState<string | null>(null)
  const { component } = useComponent()
  return (
    <Tables
      key={`${component.path}/${generation}`}
      chosen={chosen}
      setChosen={setChosen}
      onCatalogChange={(name) => {
        setChosen(name)
        setGeneration((g) => g + 1)
      }}
    />
  )
}

function Tables({ chosen, setChosen, onCatalogChange }: { chosen: string | null; setChosen: (t: string) => void; onCatalogChange: (show: string | null) => void }) {
  const { component } = useComponent()
  const mapping = useQuery(system.getTableMapping, { componentId: component.id }) as Record<string, string> | undefined
  const tables = mapping === undefined ? undefined : Object.values(mapping).filter((n) => !n.startsWith('_')).sort()
  const table = chosen !== null && tables?.includes(chosen) ? chosen : (tables?.[0] ?? null)
  const [creating, setCreating] = useState(false)
  return (
    <div className="split">
      <aside className="list-pane">
        <ComponentPicker />
        <div className="pane-header">
          <h2>Tables</h2>
          <button onClick={() => setCreating(true)}>Create table</button>
        </div>
        {creating && <CreateTable onDone={(name) => (setCreating(false), name !== null && onCatalogChange(name))} />}
        {tables === undefined ? (
          <p className="muted">Loading…</p>
        ) : tables.length === 0 ? (
          <p className="muted">No tables yet.</p>
        ) : (
          <ul className="tables">
            {tables.map((t) => (
              <li key={t}>
                <button className={`table-link ${t === table ? 'active' : ''}`} data-table={t} onClick={() => setChosen(t)}>
                  <span>{t}</span>
                  <TableCount table={t} />
                </button>
              </li>
            ))}
          </ul>
        )}
      </aside>
      <section className="main-pane">{table === null ? <p className="muted">Choose or create a table.</p> : <TableView key={table} table={table} onDeleted={() => onCatalogChange(null)} />}</section>
    </div>
  )
}

function TableCount({ table }: { table: string }) {
  const { component } = useComponent()
  const n = useQuery(system.tableSize, { tableName: table, componentId: component.id }) as number | undefined
  return (
    <span className="count" data-testid={`count-${table}`}>
      {n ?? '…'}
    </span>
  )
}

function CreateTable({ onDone }: { onDone: (name: string | null) => void }) {
  const createTable = useMutation(system.createTable)
  const { component } = useComponent()
  const [name, setName] = useState('')
  const [error, setError] = useState<string | null>(null)
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault()
        createTable({ table: name.trim(), componentId: component.id }).then(
          () => onDone(name.trim()),
          (err: unknown) => setError(errorText(err)),
        )
      }}
    >
      <input name="tableName" placeholder="table name" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
      <button type="submit">Create</button>
      <button type="button" className="secondary" onClick={() => onDone(null)}>
        Cancel
      </button>
      {error !== null && <p className="error">{error}</p>}
    </form>
  )
}

const OPS = [
  ['eq', '='],
  ['neq', '≠'],
  ['gt', '>'],
  ['gte', '≥'],
  ['lt', '<'],
  ['lte', '≤'],
] as const

/** The Data page's filter as Convex's dashboard sends it: base64 of its JSON (an index: sorted in its order). */
function encodeFilters(order: 'asc' | 'desc', filter: { field: string; op: string; value: Value } | null, index: string | null): string {
  const clauses = filter === null ? [] : [{ id: 'f', field: filter.field, op: filter.op, value: JSON.parse(toJsonText(filter.value)), enabled: true }]
  const json = JSON.stringify({ clauses, order, ...(index === null ? {} : { index: { name: index, clauses: [] } }) })
  return btoa(String.fromCodePoint(...new TextEncoder().encode(json)))
}

function TableView({ table, onDeleted }: { table: string; onDeleted: () => void }) {
  const d = useDeployment()
  const [order, setOrder] = useState<'asc' | 'desc'>('desc')
  const [filter, setFilter] = useState<{ field: string; op: string; value: Value } | null>(null)
  const [index, setIndex] = useState<string | null>(null)
  const { component } = useComponent()
  const indexes = useQuery(system.indexes, { tableName: table, tableNamespace: component.id }) as Array<{ name: string; fields: unknown; staged: boolean }> | null | undefined
  const { results, status, loadMore } = usePaginatedQuery(system.paginatedTableDocuments, { table, filters: encodeFilters(order, filter, index), componentId: component.id }, { initialNumItems: 50 })
  // A selection the deployment can't use answers one `{filter, error}` object as the page.
  const refusal = (results as Array<Doc | { filter: number; error: string }>).find((r): r is { filter: number; error: string } => !('_id' in r) && 'error' in r)
  const docs = (results as Doc[]).filter((r) => '_id' in r)
  const [editing, setEditing] = useState<Doc | 'new' | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState<string | null>(null)
  const deleteDocuments = useMutation(system.deleteDocuments)
  const clearTablePage = useMutation(system.clearTablePage)
  const columns = [...new Set(docs.flatMap((doc) => Object.keys(doc)).filter((k) => k !== '_id' && k !== '_creationTime'))].sort()

  const clear = async () => {
    if (!confirm(`Delete every document of "${table}"?`)) return
    setBusy('Clearing…')
    try {
      let cursor: string | null = null
      for (;;) {
        const r = (await clearTablePage({ tableName: table, cursor, componentId: component.id })) as { continueCursor: string; hasMore: boolean }
        if (!r.hasMore) break
        cursor = r.continueCursor
      }
    } catch (e) {
      setError(errorText(e))
    } finally {
      setBusy(null)
    }
  }
  const deleteTable = async () => {
    if (!confirm(`Delete the table "${table}" and its documents?`)) return
    try {
      await adminFetch(d, '/api/delete_tables', { body: { tableNames: [table], componentId: component.id } })
      onDeleted()
    } catch (e) {
      setError(errorText(e))
    }
  }

  return (
    <div>
      <div className="pane-header">
        <h2>{table}</h2>
        <div className="actions">
          <button onClick={() => setEditing('new')}>Add document</button>
          <button className="secondary" onClick={() => void clear()} disabled={busy !== null}>
            Clear table
          </button>
          <button className="danger" onClick={() => void deleteTable()}>
            Delete table
          </button>
        </div>
      </div>
      <FilterBar order={order} setOrder={setOrder} filter={filter} setFilter={setFilter} index={index} setIndex={setIndex} indexes={(indexes ?? []).filter((i) => !i.staged && Array.isArray(i.fields)).map((i) => i.name)} />
      {refusal !== undefined && (
        <p className="error" role="alert">
          {refusal.error}
        </p>
      )}
      {busy !== null && <p className="muted">{busy}</p>}
      {error !== null && (
        <p className="error" role="alert">
          {error} <button className="link" onClick={() => setError(null)}>dismiss</button>
        </p>
      )}
      {editing !== null && <DocumentEditor table={table} doc={editing === 'new' ? null : editing} onClose={() => setEditing(null)} />}
      <div className="table-wrap">
        <table className="documents">
          <thead>
            <tr>
              <th>_id</th>
              {columns.map((c) => (
                <th key={c}>{c}</th>
              ))}
              <th>_creationTime</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {docs.map((doc) => (
              <tr key={doc._id} data-id={doc._id}>
                <td className="mono small">{doc._id}</td>
                {columns.map((c) => (
                  <td key={c} className="mono" data-field={c}>
                    {c in doc ? toJsonText(doc[c]) : <span className="muted">unset</span>}
                  </td>
                ))}
                <td className="small">{new Date(doc._creationTime).toLocaleString()}</td>
                <td className="row-actions">
                  <button className="link" onClick={() => setEditing(doc)}>
                    Edit
                  </button>
                  <button
                    className="link danger"
                    onClick={() => {
                      deleteDocuments({ toDelete: [{ id: doc._id, tableName: table }], componentId: component.id }).catch((e: unknown) => setError(errorText(e)))
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {status === 'LoadingFirstPage' && <p className="muted">Loading…</p>}
      {status === 'Exhausted' && docs.length === 0 && <p className="muted">No documents.</p>}
      <LoadMore status={status} loadMore={loadMore} />
    </div>
  )
}

function FilterBar(props: {
  order: 'asc' | 'desc'
  setOrder: (o: 'asc' | 'desc') => void
  filter: { field: string; op: string; value: Value } | null
  setFilter: (f: { field: string; op: string; value: Value } | null) => void
  index: string | null
  setIndex: (i: string | null) => void
  indexes: string[]
}) {
  const [field, setField] = useState('')
  const [op, setOp] = useState('eq')
  const [value, setValue] = useState('')
  const [error, setError] = useState<string | null>(null)
  return (
    <form
      className="filter-bar"
      onSubmit={(e) => {
        e.preventDefault()
        if (field.trim() === '') return props.setFilter(null)
        try {
          props.setFilter({ field: field.trim(), op, value: parseValue(value) })
          setError(null)
        } catch (err) {
          setError(errorText(err))
        }
      }}
    >
      <select name="sortIndex" value={props.index ?? ''} onChange={(e) => props.setIndex(e.target.value === '' ? null : e.target.value)} aria-label="Sort by">
        <option value="">By creation time</option>
        {props.indexes.map((i) => (
          <option key={i} value={i}>
            By index {i}
          </option>
        ))}
      </select>
      <select name="order" value={props.order} onChange={(e) => props.setOrder(e.target.value as 'asc' | 'desc')} aria-label="Order">
        <option value="desc">{props.index === null ? 'Newest first' : 'Descending'}</option>
        <option value="asc">{props.index === null ? 'Oldest first' : 'Ascending'}</option>
      </select>
      <input placeholder="field" value={field} onChange={(e) => setField(e.target.value)} aria-label="Filter field" />
      <select value={op} onChange={(e) => setOp(e.target.value)} aria-label="Filter operator">
        {OPS.map(([k, label]) => (
          <option key={k} value={k}>
            {label}
          </option>
        ))}
      </select>
      <input placeholder='value (JSON, e.g. "text" or 3)' value={value} onChange={(e) => setValue(e.target.value)} aria-label="Filter value" />
      <button type="submit" className="secondary">
        Filter
      </button>
      {props.filter !== null && (
        <button type="button" className="link" onClick={() => (setField(''), setValue(''), props.setFilter(null))}>
          Clear filter
        </button>
      )}
      {error !== null && <span className="error">{error}</span>}
    </form>
  )
}

/** Adds (doc null) or edits a document: its fields as JSON in Convex's encoding. */
function DocumentEditor({ table, doc, onClose }: { table: string; doc: Doc | null; onClose: () => void }) {
  const addDocument = useMutation(system.addDocument)
  const replaceDocument = useMutation(system.replaceDocument)
  const { component } = useComponent()
  const initial = (() => {
    if (doc === null) return '{\n  \n}'
    const { _id, _creationTime, ...fields } = doc
    return toJsonText(fields, 2)
  })()
  const [text, setText] = useState(initial)
  const [error, setError] = useState<string | null>(null)
  const [saving, setSaving] = useState(false)
  const save = async () => {
    setError(null)
    let value: Value
    try {
      value = parseValue(text)
    } catch (e) {
      setError(errorText(e))
      return
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof ArrayBuffer) {
      setError('A document is a JSON object.')
      return
    }
    setSaving(true)
    try {
      const result = (doc === null ? await addDocument({ table, documents: [value], componentId: component.id }) : await replaceDocument({ id: doc._id, document: value, componentId: component.id })) as { success: boolean; error?: string }
      if (!result.success) setError(result.error ?? 'The change was refused.')
      else onClose()
    } catch (e) {
      setError(errorText(e))
    } finally {
      setSaving(false)
    }
  }
  return (
    <div className="editor" role="dialog" aria-label={doc === null ? 'Add document' : 'Edit document'}>
      <h3>{doc === null ? `Add a document to ${table}` : `Edit ${doc._id}`}</h3>
      <p className="muted small">JSON in Convex&apos;s encoding: int64 as {'{"$integer": "<base64>"}'}, bytes as {'{"$bytes": "<base64>"}'}, ids as strings.</p>
      <textarea name="document" value={text} onChange={(e) => setText(e.target.value)} rows={Math.min(20, Math.max(6, text.split('\n').length + 1))} spellCheck={false} />
      {error !== null && (
        <pre className="error" role="alert">
          {error}
        </pre>
      )}
      <div className="actions">
        <button onClick={() => void save()} disabled={saving}>
          Save
        </button>
        <button className="secondary" onClick={onClose}>
          Cancel
        </button>
      </div>
    </div>
  )
}
