/**
 * @module Bytes between the host and the sandbox. Syscalls carry them as base64 in JSON: inline up
 * to BODY_PIECE bytes, and larger ones in pieces of that size, staged on the receiving side first
 * (`concave/stagePut` from the sandbox, `concave/stageGet` to it). So the isolate never holds a
 * whole byte string's base64: a 20 MiB body's would not fit in its memory beside the body itself.
 * One staging area serves one call (actionSyscalls, udfSyscalls); what it holds goes with it.
 */
import { BODY_PIECE } from '../../runtime/protocol.ts'
import type { BytesRef } from '../../runtime/protocol.ts'

/** The most bytes a call may have staged toward the host at once (more than any body or argument it may send). */
export const MAX_STAGED_BYTES = 64 * 1024 * 1024

export class Staging {
  /** Pieces the sandbox is sending, by the id it gave them, and their bytes in all. */
  readonly #incoming = new Map<number, Buffer[]>()
  #incomingBytes = 0
  /** Byte strings the sandbox is fetching, by the id given here. */
  readonly #outgoing = new Map<number, Buffer>()
  #next = 1

  /** `inline`: never stage (a Node action's worker has memory to spare, and no isolate limit). */
  constructor(readonly inline = false) {}

  /** Answers a staging syscall; undefined if `op` is not one. */
  op(op: string, args: Record<string, unknown>): string | undefined {
    if (op === 'concave/stagePut') {
      const id = Number(args.id)
      const piece = Buffer.from(String(args.chunk), 'base64')
      if (this.#incomingBytes + piece.length > MAX_STAGED_BYTES) throw new Error(`More than ${MAX_STAGED_BYTES} bytes staged for the host at once`)
      let pieces = this.#incoming.get(id)
      if (pieces === undefined) this.#incoming.set(id, (pieces = []))
      pieces.push(piece)
      this.#incomingBytes += piece.length
      return 'null'
    }
    if (op === 'concave/stageGet') {
      const id = Number(args.id)
      const at = Number(args.at)
      const bytes = this.#outgoing.get(id)
      if (bytes === undefined || !Number.isInteger(at) || at < 0 || at >= bytes.length) throw new Error('No such staged bytes')
      // The last piece fetched lets the bytes go.
      if (at + BODY_PIECE >= bytes.length) this.#outgoing.delete(id)
      return JSON.stringify({ chunk: bytes.subarray(at, at + BODY_PIECE).toString('base64') })
    }
    return undefined
  }

  /** The bytes a syscall's argument refers to: inline base64, or pieces staged (and let go now). */
  take(ref: unknown): Buffer {
    if (typeof ref === 'string') return Buffer.from(ref, 'base64')
    const { staged, length } = (ref ?? {}) as { staged?: unknown; length?: unknown }
    const pieces = this.#incoming.get(Number(staged))
    this.#incoming.delete(Number(staged))
    const bytes = pieces === undefined ? Buffer.alloc(0) : Buffer.concat(pieces)
    this.#incomingBytes -= bytes.length
    if (bytes.length !== length) throw new Error(`Expected ${String(length)} staged bytes, got ${bytes.length}`)
    return bytes
  }

  /** Lets go of everything staged (the call is over). */
  clear(): void {
    this.#incoming.clear()
    this.#outgoing.clear()
    this.#incomingBytes = 0
  }

  /** A reference for a syscall's answer to `bytes`: inline, or staged for the sandbox to fetch. */
  give(bytes: Buffer): BytesRef {
    if (this.inline || bytes.length <= BODY_PIECE) return bytes.toString('base64')
    const id = this.#next++
    this.#outgoing.set(id, bytes)
    return { staged: id, length: bytes.length }
  }
}
