/**
 * Validator JSON (as exported by `v.*` validators, schema `documentType`, function `exportArgs()`/`exportReturns()`)
 * and value validation with the backend's exact messages:
 * crates/common/src/schemas/validator.rs (`check_value`, `ValidationError`, `Display for Validator`),
 * crates/common/src/schemas/json.rs (grammar), crates/model/src/modules/function_validators.rs
 * (`ArgumentValidationError` wording of args checks, `ReturnsValidationError: `), crates/udf/src/validation.rs
 * (`ArgumentValidationError: ` prefix), crates/common/src/schemas/mod.rs (`SchemaEnforcementError::Document`).
 * @module
 */
import { compareValues } from './compare.ts'
import { displayValue, jsonF64 } from './display.ts'
import { decodeId } from './id.ts'
import { COMMIT_TS, UNDEFINED, jsonToValue, type ExtendedValue, type JSONValue, type Value } from './value.ts'

/** An object field's validator: `{fieldType, optional}`. */
export type FieldTypeJSON = { fieldType: ValidatorJSON; optional: boolean }

/** The validator JSON grammar (`"number"` = `v.float64()`, `"bigint"` = `v.int64()`; legacy `"map"`/`"set"` = any). */
export type ValidatorJSON =
  | { type: 'null' | 'number' | 'bigint' | 'boolean' | 'string' | 'bytes' | 'any' | 'commitTs' | 'map' | 'set' }
  | { type: 'literal'; value: JSONValue }
  | { type: 'id'; tableName: string }
  | { type: 'array'; value: ValidatorJSON }
  | { type: 'record'; keys: ValidatorJSON; values: FieldTypeJSON }
  | { type: 'object'; value: { [field: string]: FieldTypeJSON } }
  | { type: 'union'; value: ValidatorJSON[] }

/** Table lookups for `v.id(...)`. With `tableNameForNumber`, mismatches get the backend's "Found ID … from table …" messages. */
export interface ValidatorContext {
  tableNumberForName(name: string): number | undefined
  tableNameForNumber?(tableNumber: number): string | undefined
}

type ObjectValidatorJSON = Extract<ValidatorJSON, { type: 'object' }>

/** A validation failure; `path` holds context segments innermost first (like the backend's `reversed_path`). */
type Failure =
  | { kind: 'tableMismatch'; id: string; found: string; table: string; path: string[] }
  | { kind: 'systemTable'; id: string; table: string; path: string[] }
  | { kind: 'literal'; value: ExtendedValue | undefined; literal: ValidatorJSON; path: string[] }
  | { kind: 'missing'; object: Record<string, ExtendedValue>; field: string; validator: ObjectValidatorJSON; path: string[] }
  | { kind: 'extra'; object: Record<string, ExtendedValue>; field: string; validator: ObjectValidatorJSON; path: string[] }
  | { kind: 'noMatch'; value: ExtendedValue | undefined; validator: ValidatorJSON; path: string[] }

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

const literalCache = new WeakMap<object, Value>()
const sortedKeysCache = new WeakMap<object, string[]>()

function literalValue(v: { value: JSONValue }): Value {
  let x = literalCache.get(v)
  if (x === undefined) {
    x = jsonToValue(v.value)
    literalCache.set(v, x)
  }
  return x
}

function sortedKeys(o: object): string[] {
  let keys = sortedKeysCache.get(o)
  if (keys === undefined) {
    keys = Object.keys(o).sort()
    sortedKeysCache.set(o, keys)
  }
  return keys
}

function isPlainObject(v: ExtendedValue | undefined): v is Record<string, ExtendedValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof ArrayBuffer)
}

function present(x: ExtendedValue | undefined): boolean {
  return x !== undefined && x !== UNDEFINED
}

function check(t: ValidatorJSON, v: ExtendedValue | undefined, ctx: ValidatorContext): Failure | null {
  switch (t.type) {
    case 'any':
    case 'map':
    case 'set':
      return null
    case 'null':
      if (v === null) return null
      break
    case 'number':
      if (typeof v === 'number') return null
      break
    case 'bigint':
    case 'commitTs':
      if (typeof v === 'bigint' || v === COMMIT_TS) return null
      break
    case 'boolean':
      if (typeof v === 'boolean') return null
      break
    case 'string':
      if (typeof v === 'string') return null
      break
    case 'bytes':
      if (v instanceof ArrayBuffer) return null
      break
    case 'literal': {
      const lit = literalValue(t)
      if (compareValues(v, lit) === 0) return null
      return { kind: 'literal', value: v, literal: t, path: [] }
    }
    case 'id': {
      if (typeof v !== 'string') break
      const id = decodeId(v)
      if (id === null) break
      if (ctx.tableNameForNumber !== undefined) {
        const found = ctx.tableNameForNumber(id.tableNumber)
        if (found === undefined) break
        if (found === t.tableName) return null
        if (found.startsWith('_')) return { kind: 'systemTable', id: v, table: t.tableName, path: [] }
        return { kind: 'tableMismatch', id: v, found, table: t.tableName, path: [] }
      }
      if (ctx.tableNumberForName(t.tableName) === id.tableNumber) return null
      break
    }
    case 'array': {
      if (!Array.isArray(v)) break
      for (let i = 0; i < v.length; i++) {
        const f = check(t.value, v[i], ctx)
        if (f !== null) return (f.path.push(`[${i}]`), f)
      }
      return null
    }
    case 'record': {
      if (!isPlainObject(v)) break
      for (const k of Object.keys(v).sort()) {
        if (!present(v[k])) continue
        let f = check(t.keys, k, ctx)
        if (f !== null) return (f.path.push('.keys()'), f)
        f = check(t.values.fieldType, v[k], ctx)
        if (f !== null) return (f.path.push('.values()'), f)
      }
      return null
    }
    case 'object': {
      if (!isPlainObject(v)) break
      const fields = t.value
      for (const k of sortedKeys(fields)) {
        const ft = fields[k]!
        if (hasOwn(v, k) && present(v[k])) {
          const f = check(ft.fieldType, v[k], ctx)
          if (f !== null) return (f.path.push(`.${k}`), f)
        } else if (!ft.optional) {
          return { kind: 'missing', object: v, field: k, validator: t, path: [] }
        }
      }
      let extra: string | undefined
      for (const k in v) {
        if (!hasOwn(fields, k) && present(v[k]) && (extra === undefined || k < extra)) extra = k
      }
      if (extra !== undefined) return { kind: 'extra', object: v, field: extra, validator: t, path: [] }
      return null
    }
    case 'union': {
      if (t.value.length === 1) return check(t.value[0]!, v, ctx)
      for (const u of t.value) if (check(u, v, ctx) === null) return null
      break
    }
    default:
      throw new Error(`Unknown validator type ${JSON.stringify((t as { type: unknown }).type)}`)
  }
  return { kind: 'noMatch', value: v, validator: t, path: [] }
}

function formatFailure(f: Failure): string {
  const path = f.path.length === 0 ? '' : 'Path: ' + f.path.reverse().join('')
  switch (f.kind) {
    case 'tableMismatch':
      return `Found ID "${f.id}" from table \`${f.found}\`, which does not match the table name in validator \`v.id("${f.table}")\`.${path}`
    case 'systemTable':
      return `Found ID "${f.id}" from a system table, which does not match the table name in validator \`v.id("${f.table}")\`.${path}`
    case 'literal':
      return `\`${displayValue(f.value)}\` does not match literal validator \`${displayValidator(f.literal)}\`.${path}`
    case 'missing':
      return (
        `Object is missing the required field \`${f.field}\`. Consider wrapping the field validator in \`v.optional(...)\` if this is expected.\n` +
        `${path}\nObject: ${displayValue(f.object)}\nValidator: ${displayValidator(f.validator)}`
      )
    case 'extra':
      return `Object contains extra field \`${f.field}\` that is not in the validator.\n${path}\nObject: ${displayValue(f.object)}\nValidator: ${displayValidator(f.validator)}`
    case 'noMatch':
      return `Value does not match validator.\n${path}\nValue: ${displayValue(f.value)}\nValidator: ${displayValidator(f.validator)}`
  }
}

/** Validates a value; returns null if it matches, else the backend's `ValidationError` text (without a prefix). */
export function validateValue(validator: ValidatorJSON, value: ExtendedValue | undefined, ctx: ValidatorContext): string | null {
  const f = check(validator, value, ctx)
  return f === null ? null : formatFailure(f)
}

/** Prefixes a validation message the way the backend reports it for arguments, return values, or schema enforcement on writes. */
export function formatValidatorError(kind: 'args' | 'returns' | 'schema', message: string, tableName?: string): string {
  switch (kind) {
    case 'args': return `ArgumentValidationError: ${message}`
    case 'returns': return `ReturnsValidationError: ${message}`
    case 'schema': return `Failed to insert or update a document in table "${tableName}" because it does not match the schema: ${message}`
  }
}

/** Validates positional function arguments (normally one object) against an args validator; null = OK or unvalidated. */
export function validateArgs(validator: ValidatorJSON | null | undefined, args: readonly Value[], ctx: ValidatorContext): string | null {
  if (validator === null || validator === undefined || validator.type === 'any') return null
  if (args.length !== 1) {
    return formatValidatorError(
      'args',
      `Expected to receive a single object as the function's argument. Instead received ${args.length} arguments: ${displayValue(args as Value[])}`,
    )
  }
  const arg = args[0]!
  if (!isPlainObject(arg)) {
    return formatValidatorError('args', `Expected to receive an object as the function's argument. Instead received: ${displayValue(arg)}`)
  }
  const message = validateValue(validator, arg, ctx)
  return message === null ? null : formatValidatorError('args', message)
}

/** Validates a function's return value; null = OK or unvalidated. */
export function validateReturns(validator: ValidatorJSON | null | undefined, value: ExtendedValue, ctx: ValidatorContext): string | null {
  if (validator === null || validator === undefined || validator.type === 'any') return null
  const message = validateValue(validator, value, ctx)
  return message === null ? null : formatValidatorError('returns', message)
}

const documentValidatorCache = new WeakMap<object, ValidatorJSON>()

/** The schema's document validator with top-level system (`_`) fields removed, as the backend enforces it. */
function documentValidator(documentType: ValidatorJSON): ValidatorJSON {
  let out = documentValidatorCache.get(documentType)
  if (out !== undefined) return out
  const strip = (o: ValidatorJSON): ValidatorJSON => {
    if (o.type !== 'object') return o
    const value: Record<string, FieldTypeJSON> = {}
    for (const k of Object.keys(o.value)) if (!k.startsWith('_')) value[k] = o.value[k]!
    return { type: 'object', value }
  }
  out = documentType.type === 'union' ? { type: 'union', value: documentType.value.map(strip) } : strip(documentType)
  documentValidatorCache.set(documentType, out)
  return out
}

/** Enforces a table's schema `documentType` on a document (system fields ignored); null = OK. */
export function validateDocument(
  tableName: string,
  documentType: ValidatorJSON | null | undefined,
  doc: Record<string, ExtendedValue>,
  ctx: ValidatorContext,
): string | null {
  if (documentType === null || documentType === undefined || documentType.type === 'any') return null
  const user: Record<string, ExtendedValue> = {}
  for (const k in doc) if (!k.startsWith('_')) user[k] = doc[k]!
  const message = validateValue(documentValidator(documentType), user, ctx)
  return message === null ? null : formatValidatorError('schema', message, tableName)
}

/** Prints a validator like the backend's `Display for Validator`: `v.object({a: v.string(), b: v.optional(v.float64())})`. */
export function displayValidator(t: ValidatorJSON): string {
  switch (t.type) {
    case 'id': return `v.id("${t.tableName}")`
    case 'null': return 'v.null()'
    case 'number': return 'v.float64()'
    case 'bigint': return 'v.int64()'
    case 'commitTs': return 'v.commitTs()'
    case 'boolean': return 'v.boolean()'
    case 'string': return 'v.string()'
    case 'bytes': return 'v.bytes()'
    case 'any':
    case 'map':
    case 'set':
      return 'v.any()'
    case 'literal': return `v.literal(${displayLiteral(literalValue(t))})`
    case 'array': return `v.array(${displayValidator(t.value)})`
    case 'record': return `v.record(${displayValidator(t.keys)}, ${displayValidator(t.values.fieldType)})`
    case 'object': {
      const parts = sortedKeys(t.value).map((k) => {
        const ft = t.value[k]!
        const inner = displayValidator(ft.fieldType)
        return `${k}: ${ft.optional ? `v.optional(${inner})` : inner}`
      })
      return `v.object({${parts.join(', ')}})`
    }
    case 'union': return `v.union(${t.value.map(displayValidator).join(', ')})`
  }
}

/** `Display for LiteralValidator`: JSON for finite floats, booleans and strings; `<number>` / `<bigint>` otherwise. */
function displayLiteral(v: Value): string {
  switch (typeof v) {
    case 'number': return Number.isFinite(v) ? jsonF64(v) : '<number>'
    case 'bigint': return '<bigint>'
    case 'boolean': return v ? 'true' : 'false'
    case 'string': return JSON.stringify(v)
  }
  return displayValue(v)
}
