/**
 * Upload URL tokens in Convex's format (its keybroker's `StorageTokenProto`, sealed as admin keys
 * are but keyed for the purpose "store file authorization"), so a token is Convex's in every way
 * a client or a tool could check:
 *
 *   token    = HEX of 0x01 ‖ nonce ‖ AES-128-GCM-SIV(payload)
 *   payload  = protobuf { 1 instance_name: string, 2 issued_s: uint64,
 *              oneof authorization_type { 3 store_file: Empty }, 4 component_id?: string }
 *
 * Concave puts the component's path in `component_id` (Convex: its id); only Concave reads it.
 */
import { openCurrent, sealCurrent } from './convex-format.ts'
import { parseInstanceSecret } from './secret.ts'

const PURPOSE = 'store file authorization'

export interface StorageToken {
  instanceName: string
  /** Seconds since the epoch. */
  issuedS: number
  /** Whether it authorizes storing a file (the only kind there is). */
  storeFile: boolean
  component: string | null
}

function varint(out: number[], value: number): void {
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
}

function bytesField(out: number[], tag: number, bytes: Uint8Array): void {
  out.push(tag)
  varint(out, bytes.length)
  out.push(...bytes)
}

export function issueStorageToken(instanceSecretHex: string, token: Omit<StorageToken, 'storeFile'>): string {
  const out: number[] = []
  bytesField(out, 0x0a, Buffer.from(token.instanceName, 'utf8'))
  out.push(0x10)
  varint(out, token.issuedS)
  out.push(0x1a, 0x00)
  if (token.component !== null) bytesField(out, 0x22, Buffer.from(token.component, 'utf8'))
  return sealCurrent(parseInstanceSecret(instanceSecretHex), new Uint8Array(out), undefined, PURPOSE)
}

/** The token's contents, or null when it isn't one sealed with this secret (or is malformed). */
export function openStorageToken(instanceSecretHex: string, hex: string): StorageToken | null {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return null
  const payload = openCurrent(parseInstanceSecret(instanceSecretHex), new Uint8Array(Buffer.from(hex, 'hex')), PURPOSE)
  if (payload === null) return null
  const token: StorageToken = { instanceName: '', issuedS: 0, storeFile: false, component: null }
  let pos = 0
  const readVarint = (): number => {
    let v = 0
    for (let shift = 1; ; shift *= 0x80) {
      if (pos >= payload.length) throw new Error('truncated varint')
      const b = payload[pos++]!
      v += (b & 0x7f) * shift
      if (b < 0x80) return v
    }
  }
  try {
    while (pos < payload.length) {
      const key = readVarint()
      const field = Math.floor(key / 8)
      const wire = key % 8
      if (wire === 0) {
        const v = readVarint()
        if (field === 2) token.issuedS = v
      } else if (wire === 2) {
        const n = readVarint()
        if (pos + n > payload.length) return null
        const bytes = payload.subarray(pos, pos + n)
        pos += n
        if (field === 1) token.instanceName = Buffer.from(bytes).toString('utf8')
        else if (field === 3) token.storeFile = true
        else if (field === 4) token.component = Buffer.from(bytes).toString('utf8')
      } else if (wire === 1 || wire === 5) pos += wire === 1 ? 8 : 4
      else return null
    }
  } catch {
    return null
  }
  return token
}
