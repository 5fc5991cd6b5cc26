/**
 * @module The host end of the sandbox's `crypto.subtle` (runtime/subtle.ts): each call is carried
 * out by Node's WebCrypto.
 *
 * The host keeps no state between calls. A sandbox CryptoKey carries its key material: a JWK, or
 * raw bytes for key-derivation keys (PBKDF2, HKDF), which WebCrypto never exports. Keys are
 * therefore always made extractable here; the sandbox enforces the caller's `extractable` flag.
 * Values cross as JSON: bytes as `{$bytes: base64}`, keys as `{$key: SerializedKey}`.
 */
import { webcrypto } from 'node:crypto'
import type { SerializedKey } from '../../runtime/subtle.ts'
import type { BytesRef } from '../../runtime/protocol.ts'
import type { Staging } from './staging.ts'

type WebCryptoKey = webcrypto.CryptoKey


const KDF = new Set(['PBKDF2', 'HKDF'])
const subtle = webcrypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
/** Methods that make keys: where their key algorithm and `extractable` arguments are. */
const MAKES_KEY: Record<string, { algorithm: number; extractable: number }> = {
  importKey: { algorithm: 2, extractable: 3 },
  generateKey: { algorithm: 0, extractable: 1 },
  deriveKey: { algorithm: 2, extractable: 3 },
  unwrapKey: { algorithm: 4, extractable: 5 },
}
const METHODS = new Set(['digest', 'importKey', 'exportKey', 'generateKey', 'sign', 'verify', 'encrypt', 'decrypt', 'deriveBits', 'deriveKey', 'wrapKey', 'unwrapKey'])

function algorithmName(algorithm: unknown): string {
  return String(typeof algorithm === 'string' ? algorithm : (algorithm as { name?: unknown })?.name ?? '').toUpperCase()
}

/** The sandbox's arguments: bytes (inline or staged: see Staging), keys imported from their material. */
async function decode(value: unknown, staging: Staging): Promise<unknown> {
  if (Array.isArray(value)) return Promise.all(value.map((x) => decode(x, staging)))
  if (value === null || typeof value !== 'object') return value
  const v = value as Record<string, unknown>
  if (v.$bytes !== undefined) return new Uint8Array(staging.take(v.$bytes))
  if (v.$key !== undefined) return importSerialized(v.$key as SerializedKey)
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = await decode(x, staging)
  return out
}

async function importSerialized(key: SerializedKey): Promise<WebCryptoKey> {
  const data = key.format === 'raw' ? new Uint8Array(Buffer.from(String(key.data), 'base64')) : key.data
  const extractable = !KDF.has(algorithmName(key.algorithm))
  return (await subtle.importKey!(key.format, data, key.algorithm, extractable, key.usages)) as WebCryptoKey
}

/** A key as the sandbox holds it; `raw` is the input of a KDF key import (not exportable). */
async function serializeKey(key: WebCryptoKey, extractable: boolean, raw?: Uint8Array): Promise<SerializedKey> {
  const kdf = KDF.has(algorithmName(key.algorithm))
  const material = kdf ? { format: 'raw' as const, data: Buffer.from(raw ?? new Uint8Array(0)).toString('base64') } : { format: 'jwk' as const, data: await webcrypto.subtle.exportKey('jwk', key) }
  return { ...material, type: key.type, algorithm: await encode(key.algorithm), extractable, usages: [...key.usages] }
}

/** A result for the sandbox: bytes as BytesRefs (`staging`: large ones staged; none: inline), keys as their material. */
async function encode(value: unknown, extractable = true, staging?: Staging): Promise<unknown> {
  if (value instanceof ArrayBuffer) return { $bytes: bytesRef(Buffer.from(value), staging) }
  if (ArrayBuffer.isView(value)) return { $bytes: bytesRef(Buffer.from(value.buffer, value.byteOffset, value.byteLength), staging) }
  // A public key is always extractable.
  if (value instanceof (globalThis.CryptoKey as unknown as new () => WebCryptoKey)) return { $key: await serializeKey(value, value.type === 'public' || extractable) }
  if (Array.isArray(value)) return Promise.all(value.map((x) => encode(x, extractable, staging)))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(value)) out[k] = await encode(x, extractable, staging)
    return out
  }
  return value
}

function bytesRef(bytes: Buffer, staging: Staging | undefined): BytesRef {
  return staging === undefined ? bytes.toString('base64') : staging.give(bytes)
}

/** Bounds on work that runs on libuv's thread pool (shared with file I/O) and can't be stopped. */
const MAX_PBKDF2_ITERATIONS = 2_000_000
const MAX_RSA_MODULUS_BITS = 8192

function checkCost(method: string, args: unknown[]): void {
  const algorithm = args[0] as { name?: unknown; iterations?: unknown; modulusLength?: unknown } | undefined
  if ((method === 'deriveBits' || method === 'deriveKey') && algorithmName(algorithm) === 'PBKDF2' && Number(algorithm?.iterations) > MAX_PBKDF2_ITERATIONS) {
    throw new Error(`NotSupportedError: PBKDF2 with more than ${MAX_PBKDF2_ITERATIONS} iterations is not supported`)
  }
  if (method === 'generateKey' && Number(algorithm?.modulusLength) > MAX_RSA_MODULUS_BITS) {
    throw new Error(`NotSupportedError: RSA keys longer than ${MAX_RSA_MODULUS_BITS} bits are not supported`)
  }
}

/** Convex's message for an OperationError of `method` with `algorithm` (crates/isolate/src/ops/subtle_crypto), where it has its own. */
function operationFailure(method: string, algorithm: string): string | null {
  if (algorithm === 'RSA-OAEP') return method === 'decrypt' ? 'OAEP decryption failed' : method === 'encrypt' ? 'OAEP encryption failed' : null
  if (method === 'decrypt' && algorithm.startsWith('AES-')) return 'Decryption failed'
  return null
}

/** One `crypto.subtle` call: `{method, args}` in the encoding above; answers `{result}`. */
export async function subtleCall(argsJson: string, staging: Staging): Promise<string> {
  const { method, args: encodedArgs } = JSON.parse(argsJson) as { method: string; args: unknown[] }
  if (!METHODS.has(method)) throw new Error(`crypto.subtle.${method} is not supported`)
  const args = (await decode(encodedArgs, staging)) as unknown[]
  checkCost(method, args)
  // Keys are made extractable here so the sandbox can hold them; it keeps the caller's flag.
  let extractable = true
  const made = MAKES_KEY[method]
  if (made !== undefined) {
    extractable = args[made.extractable] === true
    if (!KDF.has(algorithmName(args[made.algorithm]))) args[made.extractable] = true
  }
  let result: unknown
  try {
    result = await subtle[method]!(...args)
  } catch (e) {
    // WebCrypto's DOMExceptions keep their name (NotSupportedError, OperationError, …); a
    // failed decryption says what Convex's says.
    const err = e as { name?: string; message?: string }
    const message = err.name === 'OperationError' ? (operationFailure(method, algorithmName(args[0])) ?? err.message) : err.message
    throw new Error(`${err.name ?? 'Error'}: ${message ?? String(e)}`)
  }
  if (method === 'importKey' && KDF.has(algorithmName(args[2]))) {
    return JSON.stringify({ result: { $key: await serializeKey(result as WebCryptoKey, extractable, args[1] as Uint8Array) } })
  }
  return JSON.stringify({ result: await encode(result, extractable, staging) })
}
