/**
 * @module `crypto.subtle` for the sandbox: `digest` (SHA-1/256/384/512) and HMAC keys
 * (`importKey('raw' | 'jwk')`, `sign`, `verify`, `exportKey('raw')`), computed by the host
 * (`concave/crypto`, synchronous, so queries and mutations may use them too).
 */
import { base64ToBytes, bytesToBase64 } from './web.ts'

type Host = (op: string, argsJson: string) => string

function bytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function hashName(alg: string | { name: string }): string {
  const name = (typeof alg === 'string' ? alg : alg.name).toUpperCase()
  if (!['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'].includes(name)) throw new DOMException(`Unsupported hash ${name}`, 'NotSupportedError')
  return name
}

class DOMException extends Error {
  constructor(message: string, override readonly name: string) {
    super(message)
  }
}

export class CryptoKeyPolyfill {
  readonly type = 'secret'
  constructor(
    readonly algorithm: { name: 'HMAC'; hash: { name: string }; length: number },
    readonly extractable: boolean,
    readonly usages: string[],
    /** @internal */ readonly _raw: Uint8Array,
  ) {}
}

export function makeSubtle(host: Host) {
  const call = (args: Record<string, unknown>) => JSON.parse(host('concave/crypto', JSON.stringify(args))) as { result: string }
  return {
    async digest(algorithm: string | { name: string }, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> {
      return base64ToBytes(call({ op: 'digest', hash: hashName(algorithm), data: bytesToBase64(bytes(data)) }).result).buffer as ArrayBuffer
    },
    async importKey(format: string, keyData: ArrayBuffer | ArrayBufferView | { k?: string }, algorithm: { name: string; hash: string | { name: string } }, extractable: boolean, usages: string[]): Promise<CryptoKeyPolyfill> {
      if (String(algorithm?.name).toUpperCase() !== 'HMAC') throw new DOMException(`Unsupported algorithm ${algorithm?.name}: only HMAC keys are available`, 'NotSupportedError')
      let raw: Uint8Array
      if (format === 'raw') raw = bytes(keyData as ArrayBuffer).slice()
      else if (format === 'jwk') raw = base64ToBytes(String((keyData as { k?: string }).k ?? '').replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(String((keyData as { k?: string }).k ?? '').length / 4) * 4, '='))
      else throw new DOMException(`Unsupported key format ${format}`, 'NotSupportedError')
      return new CryptoKeyPolyfill({ name: 'HMAC', hash: { name: hashName(algorithm.hash) }, length: raw.length * 8 }, extractable, usages, raw)
    },
    async exportKey(format: string, key: CryptoKeyPolyfill): Promise<ArrayBuffer> {
      if (format !== 'raw' || !key.extractable) throw new DOMException('Key is not extractable in that format', 'InvalidAccessError')
      return key._raw.slice().buffer
    },
    async sign(_algorithm: unknown, key: CryptoKeyPolyfill, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> {
      return base64ToBytes(call({ op: 'hmac', hash: key.algorithm.hash.name, key: bytesToBase64(key._raw), data: bytesToBase64(bytes(data)) }).result).buffer as ArrayBuffer
    },
    async verify(algorithm: unknown, key: CryptoKeyPolyfill, signature: ArrayBuffer | ArrayBufferView, data: ArrayBuffer | ArrayBufferView): Promise<boolean> {
      const expected = new Uint8Array(await this.sign(algorithm, key, data))
      const got = bytes(signature)
      if (expected.length !== got.length) return false
      let diff = 0
      for (let i = 0; i < got.length; i++) diff |= expected[i]! ^ got[i]!
      return diff === 0
    },
  }
}
