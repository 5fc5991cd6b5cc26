/**
 * @module The body of a function call (`/api/query`, `/api/mutation`, `/api/action`,
 * `/api/function`, `/api/run/...`) checked as Convex's backend deserializes it (serde, through
 * axum's `Json`): a field of the wrong type or a required field missing is refused with serde's
 * words and the position where its reader stood (`at line L column C`).
 *
 * The checks run on the parsed body; only a body that fails one is read again, as text, for the
 * position.
 */

/** A request struct of Convex's: its name and fields, each `string` or `optional` (string or null) or `any`. */
export interface RequestShape {
  readonly name: string
  readonly fields: readonly (readonly [string, 'string' | 'optional' | 'any'])[]
}

/** `UdfPostRequest`: `/api/query`, `/api/mutation`, `/api/action`. */
export const UDF_POST_REQUEST: RequestShape = { name: 'UdfPostRequest', fields: [['path', 'string'], ['args', 'any'], ['format', 'optional']] }
/** `UdfPostRequestWithComponent`: `/api/function`. */
export const UDF_POST_REQUEST_WITH_COMPONENT: RequestShape = { name: 'UdfPostRequestWithComponent', fields: [['componentPath', 'optional'], ['path', 'string'], ['args', 'any'], ['format', 'optional']] }
/** `QueryBatchArgs`: `/api/query_batch` (each of its `queries` a UdfPostRequest). */
export const QUERY_BATCH_ARGS: RequestShape = { name: 'QueryBatchArgs', fields: [['queries', 'any']] }
/** `UdfPostRequestArgsOnly`: `/api/run/...`. */
export const UDF_POST_REQUEST_ARGS_ONLY: RequestShape = { name: 'UdfPostRequestArgsOnly', fields: [['args', 'any'], ['format', 'optional']] }

/**
 * What Convex answers (400 `BadJsonBody`) for a body `text` that parsed as `body` but doesn't
 * deserialize into `shape`, or null when it does. `path`: where in the request body it stands
 * (`queries[1]`), as serde's path to the field; its position in the whole body is then left out.
 */
export function requestShapeError(source: string | (() => string), body: unknown, shape: RequestShape, path?: string): string | null {
  if (Array.isArray(body)) return null // (serde reads a struct from an array field by field; that form is not checked here)
  const isObject = body !== null && typeof body === 'object'
  const fields = body as Record<string, unknown>
  if (isObject && shape.fields.every(([name, kind]) => fits(fields, name, kind))) return null
  const text = typeof source === 'string' ? source : source()
  if (!isObject) {
    const start = skipSpace(text, 0)
    const end = skipValue(text, start)
    return deserializeError(`invalid type: ${unexpected(text.slice(start, end))}, expected struct ${shape.name}`, text, end, path)
  }
  const missing = shape.fields.find(([name, kind]) => kind !== 'optional' && !(name in fields))
  // serde reads the fields in the body's order: the first of the wrong type fails it; a missing
  // one only once the object is read (in the struct's order).
  const { entries, close } = topLevelEntries(text)
  for (const { key, start, end } of entries) {
    const kind = shape.fields.find(([name]) => name === key)?.[1]
    if (kind === undefined || kind === 'any') continue
    const token = text.slice(start, end)
    if (token.startsWith('"') || (kind === 'optional' && token === 'null')) continue
    // An object or array is refused as soon as its first character is seen.
    const at = token.startsWith('{') || token.startsWith('[') ? start : end
    return deserializeError(`invalid type: ${unexpected(token)}, expected a string`, text, at, path, key)
  }
  return deserializeError(`missing field \`${missing![0]}\``, text, close + 1, path)
}

/** Whether the parsed body's field `name` deserializes as a field of that kind (present unless optional). */
function fits(fields: Record<string, unknown>, name: string, kind: 'string' | 'optional' | 'any'): boolean {
  if (!(name in fields)) return kind === 'optional'
  return kind === 'any' || typeof fields[name] === 'string' || (kind === 'optional' && fields[name] === null)
}

/** What serde's reader says of an empty body. */
export const EMPTY_BODY_ERROR = 'Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 0'

/**
 * serde's message as axum's `Json` words it: the path to the value (the element `within` the body,
 * then the `field`), the message, then where the reader stood in `text` (when it is the body).
 */
function deserializeError(message: string, text: string, at: number, within?: string, field?: string): string {
  const path = [within, field].filter((p) => p !== undefined).join('.')
  const where = within === undefined ? ` at ${position(text, at)}` : ''
  return `Failed to deserialize the JSON body into the target type: ${path === '' ? '' : `${path}: `}${message}${where}`
}

/** serde's `Unexpected` for a parsed JSON value. */
export function unexpectedValue(value: unknown): string {
  return unexpected(value === undefined ? 'null' : JSON.stringify(value))
}

/** serde's `Unexpected` for a JSON value's text. */
function unexpected(token: string): string {
  if (token.startsWith('{')) return 'map'
  if (token.startsWith('[')) return 'sequence'
  if (token === 'null') return 'null'
  if (token === 'true' || token === 'false') return `boolean \`${token}\``
  if (token.startsWith('"')) return `string ${JSON.stringify(JSON.parse(token))}`
  if (/^-?\d+$/.test(token)) {
    const n = BigInt(token)
    if (n >= -(2n ** 63n) && n < 2n ** 64n) return `integer \`${n}\``
  }
  const f = Number(token)
  const text = String(f)
  return `floating point \`${/[.e]|Infinity|NaN/.test(text) ? text : `${text}.0`}\``
}

/** serde_json's position after reading `end` characters of `text`: its line, and the bytes read on it. */
function position(text: string, end: number): string {
  let line = 1
  let column = 0
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) {
      line++
      column = 0
    } else column += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3
  }
  return `line ${line} column ${column}`
}

/** The top-level object's entries (each value's span) and where its `}` is, in valid JSON text. */
function topLevelEntries(text: string): { entries: { key: string; start: number; end: number }[]; close: number } {
  const entries: { key: string; start: number; end: number }[] = []
  let i = skipSpace(text, 0) + 1
  for (;;) {
    i = skipSpace(text, i)
    if (text[i] === '}') return { entries, close: i }
    const keyEnd = skipValue(text, i)
    const key = JSON.parse(text.slice(i, keyEnd)) as string
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1)
    const end = skipValue(text, start)
    entries.push({ key, start, end })
    i = skipSpace(text, end)
    if (text[i] === ',') i++
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++
  return i
}

/** Where the JSON value starting at `i` of valid JSON text ends. */
function skipValue(text: string, i: number): number {
  const c = text[i]
  if (c === '"') {
    let j = i + 1
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
    return j + 1
  }
  if (c === '{' || c === '[') {
    let depth = 0
    let j = i
    do {
      const d = text[j]
      if (d === '"') {
        j = skipValue(text, j)
        continue
      }
      if (d === '{' || d === '[') depth++
      else if (d === '}' || d === ']') depth--
      j++
    } while (depth > 0)
    return j
  }
  let j = i
  while (j < text.length && !',}] \t\n\r'.includes(text[j]!)) j++
  return j
}
