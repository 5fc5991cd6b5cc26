/** @module Evaluates serialized filter expressions (`q.field`, `q.eq`, …) against a document. */
import { compareValues, jsonToValueAllowUndefined, UNDEFINED } from '../values/index.ts'
import type { JSONValue, Value } from '../values/index.ts'
import { fieldValue } from './catalog.ts'
import { DatabaseError } from './errors.ts'

type Operand = Value | undefined

function isNumeric(v: Operand): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint'
}

function arithmetic(op: string, a: Operand, b: Operand): Operand {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    switch (op) {
      case '$add': return BigInt.asIntN(64, a + b)
      case '$sub': return BigInt.asIntN(64, a - b)
      case '$mul': return BigInt.asIntN(64, a * b)
      case '$div': if (b === 0n) throw new DatabaseError('Division by zero'); return a / b
      case '$mod': if (b === 0n) throw new DatabaseError('Division by zero'); return a % b
    }
  }
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '$add': return a + b
      case '$sub': return a - b
      case '$mul': return a * b
      case '$div': return a / b
      case '$mod': return a % b
    }
  }
  throw new DatabaseError(`Cannot ${op.slice(1)} ${describe(a)} and ${describe(b)}: both operands must be float64 or both int64`)
}

function describe(v: Operand): string {
  if (v === undefined) return 'undefined'
  if (v === null) return 'null'
  if (typeof v === 'bigint') return 'int64'
  if (typeof v === 'number') return 'float64'
  if (v instanceof ArrayBuffer) return 'bytes'
  return Array.isArray(v) ? 'array' : typeof v
}

/** Evaluates `expr` for `doc`; the filter keeps documents for which it is `true`. */
export function evaluate(expr: JSONValue, doc: Record<string, JSONValue>): Operand {
  if (expr === null || typeof expr !== 'object' || Array.isArray(expr)) throw new DatabaseError(`Invalid filter expression: ${JSON.stringify(expr)}`)
  const keys = Object.keys(expr)
  if (keys.length !== 1) throw new DatabaseError(`Invalid filter expression: ${JSON.stringify(expr)}`)
  const op = keys[0]!
  const arg = (expr as Record<string, JSONValue>)[op]!
  switch (op) {
    case '$field':
      if (typeof arg !== 'string') throw new DatabaseError('Invalid $field expression')
      return fieldValue(doc, arg)
    case '$literal': {
      const v = jsonToValueAllowUndefined(arg)
      return v === UNDEFINED ? undefined : (v as Value)
    }
    case '$not':
      return evaluate(arg, doc) !== true
    case '$neg': {
      const v = evaluate(arg, doc)
      if (typeof v === 'bigint') return BigInt.asIntN(64, -v)
      if (typeof v === 'number') return -v
      throw new DatabaseError(`Cannot negate ${describe(v)}`)
    }
    case '$and':
    case '$or': {
      if (!Array.isArray(arg)) throw new DatabaseError(`Invalid ${op} expression`)
      if (op === '$and') return arg.every((e) => evaluate(e, doc) === true)
      return arg.some((e) => evaluate(e, doc) === true)
    }
  }
  if (!Array.isArray(arg) || arg.length !== 2) throw new DatabaseError(`Invalid filter expression: ${JSON.stringify(expr)}`)
  const a = evaluate(arg[0]!, doc)
  const b = evaluate(arg[1]!, doc)
  switch (op) {
    case '$eq': return compareValues(a, b) === 0
    case '$neq': return compareValues(a, b) !== 0
    case '$lt': return compareValues(a, b) < 0
    case '$lte': return compareValues(a, b) <= 0
    case '$gt': return compareValues(a, b) > 0
    case '$gte': return compareValues(a, b) >= 0
    case '$add': case '$sub': case '$mul': case '$div': case '$mod':
      if (!isNumeric(a) || !isNumeric(b)) throw new DatabaseError(`Cannot ${op.slice(1)} ${describe(a)} and ${describe(b)}`)
      return arithmetic(op, a, b)
  }
  throw new DatabaseError(`Unknown filter operator ${op}`)
}
