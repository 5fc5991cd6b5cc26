/**
 * @module JSON text as Convex's parser (serde_json) reads it, for checks shared by the sandbox
 * runtime and the host.
 */

/**
 * What Convex's JSON parser (serde_json) says of a lone surrogate escape in `json`, or null: its
 * syscalls refuse arguments holding one (a string cut in the middle of an emoji, say) as
 * `Received invalid json: …`, and a function's return value holding one fails it
 * (FunctionReturnInvalidJson). JSON.stringify writes every lone surrogate as a `\uXXXX` escape.
 */
export function loneSurrogate(json: string): string | null {
  if (!json.includes('\\u')) return null
  for (let i = 0; i < json.length; i++) {
    if (json.charCodeAt(i) !== 92) continue // '\\'
    if (json[i + 1] !== 'u') {
      i++
      continue
    }
    const code = parseInt(json.slice(i + 2, i + 6), 16)
    if (code >= 0xdc00 && code <= 0xdfff) return `lone trailing surrogate in hex escape at line 1 column ${utf8Length(json, i) + 6}`
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = json[i + 6] === '\\' && json[i + 7] === 'u' ? parseInt(json.slice(i + 8, i + 12), 16) : NaN
      if (!(next >= 0xdc00 && next <= 0xdfff)) return `lone leading surrogate in hex escape at line 1 column ${utf8Length(json, i) + 6}`
      i += 6
    }
    i += 5
  }
  return null
}

/** The UTF-8 length of `text`'s first `end` characters (serde's columns count bytes). */
export function utf8Length(text: string, end = text.length): number {
  let bytes = 0
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i)
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3
  }
  return bytes
}
