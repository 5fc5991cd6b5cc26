/**
 * @module The table and column selection of Convex's streaming export API (`list_snapshot`,
 * `document_deltas`): which components, tables and columns a connector wants.
 *
 * The arguments take one of four forms (Convex's `SelectionArg`, tried in this order):
 * `{selection: {...}}` (the full form below), `{tableName, component?}` (one table, `table_name`
 * too), `{component}` (one component's tables), or none of these (everything).
 *
 * The full form maps component paths ('' the app) to `"excluded"` or to a map of table names to
 * `"excluded"` or a map of column names to `"included"`/`"excluded"`; each level has an `_other`
 * entry for what it doesn't name (`"included"`/`"excluded"`, or `incl`/`excl`). `_id` is always
 * exported.
 */

export class SelectionError extends Error {}

type Inclusion = 'included' | 'excluded'

interface TableSelection {
  readonly columns: ReadonlyMap<string, Inclusion>
  readonly other: Inclusion
}
type ComponentSelection = { readonly tables: ReadonlyMap<string, TableSelection | 'excluded'>; readonly other: Inclusion } | 'excluded'

export class Selection {
  private constructor(
    readonly components: ReadonlyMap<string, ComponentSelection>,
    readonly other: Inclusion,
  ) {}

  static everything(): Selection {
    return new Selection(new Map(), 'included')
  }

  /** From a request's arguments (the JSON body of a POST, the query of a GET). */
  static fromArgs(args: Record<string, unknown>): Selection {
    if (args.selection !== undefined && args.selection !== null) return Selection.parse(args.selection)
    const tableName = args.tableName ?? args.table_name
    if (typeof tableName === 'string') {
      const component = typeof args.component === 'string' ? args.component : ''
      const table: TableSelection = { columns: new Map(), other: 'included' }
      return new Selection(new Map([[component, { tables: new Map([[tableName, table]]), other: 'excluded' }]]), 'excluded')
    }
    if (typeof args.component === 'string') return new Selection(new Map([[args.component, { tables: new Map(), other: 'included' }]]), 'excluded')
    return Selection.everything()
  }

  static parse(raw: unknown): Selection {
    const obj = object(raw, 'selection')
    const components = new Map<string, ComponentSelection>()
    for (const [path, value] of Object.entries(obj)) {
      if (path === '_other') continue
      if (isExcluded(value)) {
        components.set(path, 'excluded')
        continue
      }
      const c = object(value, `selection of component ${JSON.stringify(path)}`)
      const tables = new Map<string, TableSelection | 'excluded'>()
      for (const [table, t] of Object.entries(c)) {
        if (table === '_other') continue
        if (isExcluded(t)) {
          tables.set(table, 'excluded')
          continue
        }
        const cols = object(t, `selection of table ${JSON.stringify(table)}`)
        const columns = new Map<string, Inclusion>()
        for (const [column, inclusion] of Object.entries(cols)) {
          if (column === '_other') continue
          const i = inclusionOf(inclusion, `column ${JSON.stringify(column)}`)
          if (column === '_id' && i === 'excluded') throw new SelectionError('The _id column cannot be excluded')
          columns.set(column, i)
        }
        tables.set(table, { columns, other: inclusionOf(cols._other, `_other of table ${JSON.stringify(table)}`) })
      }
      components.set(path, { tables, other: inclusionOf(c._other, `_other of component ${JSON.stringify(path)}`) })
    }
    return new Selection(components, inclusionOf(obj._other, '_other'))
  }

  /** The table's column selection, or null when the table isn't selected. */
  #table(component: string, table: string): TableSelection | null {
    const c = this.components.get(component)
    if (c === undefined) return this.other === 'included' ? ALL_COLUMNS : null
    if (c === 'excluded') return null
    const t = c.tables.get(table)
    if (t === undefined) return c.other === 'included' ? ALL_COLUMNS : null
    return t === 'excluded' ? null : t
  }

  includesTable(component: string, table: string): boolean {
    return this.#table(component, table) !== null
  }

  /** The document's fields this selection exports (all of them unless columns are selected). */
  filterFields(component: string, table: string, fields: Record<string, unknown>): Record<string, unknown> {
    const t = this.#table(component, table)
    if (t === null || (t.columns.size === 0 && t.other === 'included')) return fields
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(fields)) if (k === '_id' || (t.columns.get(k) ?? t.other) === 'included') out[k] = v
    return out
  }
}

const ALL_COLUMNS: TableSelection = { columns: new Map(), other: 'included' }

function object(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SelectionError(`Invalid ${what}: expected an object or "excluded"`)
  return v as Record<string, unknown>
}

function isExcluded(v: unknown): boolean {
  return v === 'excluded' || v === 'excl'
}

function inclusionOf(v: unknown, what: string): Inclusion {
  if (v === 'included' || v === 'incl') return 'included'
  if (v === 'excluded' || v === 'excl') return 'excluded'
  throw new SelectionError(`Invalid ${what}: expected "included" or "excluded", got ${JSON.stringify(v)}`)
}
