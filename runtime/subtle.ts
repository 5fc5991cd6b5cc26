/**
 * @module `crypto.subtle` for the sandbox: every method of the WebCrypto API, carried out by the
 * host's WebCrypto (`concave/subtle`, src/functions/subtle.ts), in queries and mutations as in
 * actions.
 *
 * A CryptoKey here holds its own key material (a JWK, or raw bytes for PBKDF2/HKDF keys), so the
 * host keeps nothing between calls; `extractable` is enforced here, before anything is exported.
 */
import { base64ToBytes, receiveBytes, sendBytes } from './web.ts'
import type { Host } from './web.ts'
import type { BytesRef } from './protocol.ts'
import { DOMExceptionPolyfill } from './dom.ts'


/** A key as it crosses to the host: its material (a JWK, or raw bytes for KDF keys) and description. */
export interface SerializedKey {
  format: 'jwk' | 'raw'
  data: unknown
  type: string
  algorithm: unknown
  extractable: boolean
  usages: string[]
}

/**
 * Each key's material, out of reach of user code: not a property of the key (which console.log or
 * JSON.stringify would show), so a non-extractable key's secret can't be read.
 */
const material = new WeakMap<CryptoKeyPolyfill, SerializedKey>()

export class CryptoKeyPolyfill {
  readonly type: string
  readonly algorithm: Record<string, unknown>
  readonly extractable: boolean
  readonly usages: string[]
  constructor(serialized: SerializedKey) {
    this.type = serialized.type
    this.algorithm = decode(serialized.algorithm, false) as Record<string, unknown>
    this.extractable = serialized.extractable
    this.usages = [...serialized.usages]
    material.set(this, serialized)
  }
}

/** Arguments for the host: bytes as BytesRefs (large ones staged first: see sendBytes), keys as their material. */
async function encode(host: Host, value: unknown): Promise<unknown> {
  if (value instanceof ArrayBuffer) return { $bytes: await sendBytes(host, new Uint8Array(value)) }
  if (ArrayBuffer.isView(value)) return { $bytes: await sendBytes(host, new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) }
  if (value instanceof CryptoKeyPolyfill) {
    const serialized = material.get(value)
    if (serialized === undefined) throw new TypeError('Not a CryptoKey made by crypto.subtle')
    return { $key: serialized }
  }
  if (Array.isArray(value)) return Promise.all(value.map((x) => encode(host, x)))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(value)) out[k] = await encode(host, x)
    return out
  }
  return value
}

/** A result's staged bytes fetched from the host (`{$bytes: {staged}}` becomes `{$bytes: Uint8Array}`), for decode. */
async function fetchStaged(host: Host, value: unknown): Promise<unknown> {
  if (Array.isArray(value)) return Promise.all(value.map((x) => fetchStaged(host, x)))
  if (value === null || typeof value !== 'object') return value
  const v = value as Record<string, unknown>
  if (v.$bytes !== undefined && typeof v.$bytes === 'object') return { $bytes: await receiveBytes(host, v.$bytes as BytesRef) }
  if (v.$key !== undefined) return value
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = await fetchStaged(host, x)
  return out
}

/** Bytes at the top of a result are an ArrayBuffer (as WebCrypto returns), inside one a Uint8Array. */
function decode(value: unknown, top: boolean): unknown {
  if (Array.isArray(value)) return value.map((x) => decode(x, false))
  if (value === null || typeof value !== 'object') return value
  const v = value as Record<string, unknown>
  if (typeof v.$bytes === 'string' || v.$bytes instanceof Uint8Array) {
    const bytes = typeof v.$bytes === 'string' ? base64ToBytes(v.$bytes) : v.$bytes
    return top ? bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) : bytes
  }
  if (v.$key !== undefined) return new CryptoKeyPolyfill(v.$key as SerializedKey)
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = decode(x, false)
  return out
}

function requireExtractable(key: unknown): void {
  if (key instanceof CryptoKeyPolyfill && !key.extractable) throw new DOMExceptionPolyfill('key is not extractable', 'InvalidAccessError')
}

export function makeSubtle(host: Host) {
  const call = async (method: string, args: unknown[]): Promise<any> => {
    let answer: string
    try {
      answer = await host('concave/subtle', JSON.stringify({ method, args: await encode(host, args) }))
    } catch (e) {
      // The host reports WebCrypto's errors as "Name: message".
      const message = String((e as { message?: unknown })?.message ?? e)
      const m = /^([A-Za-z]+Error): ([\s\S]*)$/.exec(message)
      throw m === null ? new Error(message) : new DOMExceptionPolyfill(m[2]!, m[1]!)
    }
    return decode(await fetchStaged(host, (JSON.parse(answer) as { result: unknown }).result), true)
  }
  return {
    digest: (algorithm: unknown, data: unknown): Promise<ArrayBuffer> => call('digest', [algorithm, data]),
    importKey: (format: string, keyData: unknown, algorithm: unknown, extractable: boolean, usages: string[]): Promise<CryptoKeyPolyfill> => call('importKey', [format, keyData, algorithm, extractable, usages]),
    async exportKey(format: string, key: CryptoKeyPolyfill): Promise<ArrayBuffer | Record<string, unknown>> {
      requireExtractable(key)
      return call('exportKey', [format, key])
    },
    generateKey: (algorithm: unknown, extractable: boolean, usages: string[]): Promise<CryptoKeyPolyfill | { publicKey: CryptoKeyPolyfill; privateKey: CryptoKeyPolyfill }> => call('generateKey', [algorithm, extractable, usages]),
    sign: (algorithm: unknown, key: CryptoKeyPolyfill, data: unknown): Promise<ArrayBuffer> => call('sign', [algorithm, key, data]),
    verify: (algorithm: unknown, key: CryptoKeyPolyfill, signature: unknown, data: unknown): Promise<boolean> => call('verify', [algorithm, key, signature, data]),
    encrypt: (algorithm: unknown, key: CryptoKeyPolyfill, data: unknown): Promise<ArrayBuffer> => call('encrypt', [algorithm, key, data]),
    decrypt: (algorithm: unknown, key: CryptoKeyPolyfill, data: unknown): Promise<ArrayBuffer> => call('decrypt', [algorithm, key, data]),
    deriveBits: (algorithm: unknown, baseKey: CryptoKeyPolyfill, length: number): Promise<ArrayBuffer> => call('deriveBits', [algorithm, baseKey, length]),
    deriveKey: (algorithm: unknown, baseKey: CryptoKeyPolyfill, derivedKeyType: unknown, extractable: boolean, usages: string[]): Promise<CryptoKeyPolyfill> =>
      call('deriveKey', [algorithm, baseKey, derivedKeyType, extractable, usages]),
    async wrapKey(format: string, key: CryptoKeyPolyfill, wrappingKey: CryptoKeyPolyfill, wrapAlgorithm: unknown): Promise<ArrayBuffer> {
      requireExtractable(key)
      return call('wrapKey', [format, key, wrappingKey, wrapAlgorithm])
    },
    unwrapKey: (format: string, wrappedKey: unknown, unwrappingKey: CryptoKeyPolyfill, unwrapAlgorithm: unknown, unwrappedKeyAlgorithm: unknown, extractable: boolean, usages: string[]): Promise<CryptoKeyPolyfill> =>
      call('unwrapKey', [format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, usages]),
  }
}
