/**
 * @module Table shapes for `GET /api/shapes2` (the dashboard's column list): what Convex's
 * "reduced shapes" say of a table's documents, inferred here from the documents themselves.
 *
 * As Convex reduces them: an empty table is `Never`; all objects of a field merge into one
 * `Object` whose fields missing somewhere are optional; other kinds form a `Union` (members in
 * Convex's order: Id, Null, Int64, Float64, Boolean, String, Bytes, Object, Array), one member
 * alone standing for itself; a string that is an id of an existing table is an `Id` of it; a
 * float's range notes special values (NaN, ±Infinity, -0). Convex's inference also turns objects
 * with many or non-identifier keys into `Record`s; this one keeps them objects.
 */
import { decodeId } from '../values/index.ts'

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Everything seen at one place of the documents (a union builder). */
class Seen {
  null = false
  int64 = false
  float: { special: boolean } | null = null
  boolean = false
  string = false
  bytes = false
  /** Ids by table number. */
  readonly ids = new Set<number>()
  object: { count: number; fields: Map<string, { seen: Seen; count: number }> } | null = null
  array: Seen | null = null

  add(v: Json, tableName: (n: number) => string | undefined): void {
    if (v === null) this.null = true
    else if (typeof v === 'boolean') this.boolean = true
    else if (typeof v === 'number') this.float = { special: (this.float?.special ?? false) || !Number.isFinite(v) || Object.is(v, -0) }
    else if (typeof v === 'string') {
      const id = decodeId(v)
      if (id !== null && tableName(id.tableNumber) !== undefined) this.ids.add(id.tableNumber)
      else this.string = true
    } else if (Array.isArray(v)) {
      this.array ??= new Seen()
      for (const e of v) this.array.add(e, tableName)
    } else {
      const keys = Object.keys(v)
      if (keys.length === 1 && keys[0] === '$integer') this.int64 = true
      else if (keys.length === 1 && keys[0] === '$bytes') this.bytes = true
      else if (keys.length === 1 && keys[0] === '$float') this.float = { special: true }
      else {
        this.object ??= { count: 0, fields: new Map() }
        this.object.count++
        for (const k of keys) {
          let field = this.object.fields.get(k)
          if (field === undefined) this.object.fields.set(k, (field = { seen: new Seen(), count: 0 }))
          field.count++
          field.seen.add(v[k]!, tableName)
        }
      }
    }
  }

  shape(tableName: (n: number) => string | undefined): Json {
    const members: Json[] = []
    for (const n of [...this.ids].sort((a, b) => a - b)) members.push({ type: 'Id', tableName: tableName(n)! })
    if (this.null) members.push({ type: 'Null' })
    if (this.int64) members.push({ type: 'Int64' })
    if (this.float !== null) members.push({ type: 'Float64', float64Range: { hasSpecialValues: this.float.special } })
    if (this.boolean) members.push({ type: 'Boolean' })
    if (this.string) members.push({ type: 'String' })
    if (this.bytes) members.push({ type: 'Bytes' })
    if (this.object !== null) {
      const { count, fields } = this.object
      const names = [...fields.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      members.push({ type: 'Object', fields: names.map((n) => ({ fieldName: n, optional: fields.get(n)!.count < count, shape: fields.get(n)!.seen.shape(tableName) })) })
    }
    if (this.array !== null) members.push({ type: 'Array', shape: this.array.shape(tableName) })
    if (members.length === 0) return { type: 'Never' }
    return members.length === 1 ? members[0]! : { type: 'Union', shapes: members }
  }
}

/** The reduced shape (Convex's dashboard JSON) of documents (Convex-encoded JSON objects). */
export function tableShape(documents: Iterable<Record<string, Json>>, tableName: (tableNumber: number) => string | undefined): Json {
  const seen = new Seen()
  for (const d of documents) seen.add(d, tableName)
  return seen.shape(tableName)
}
