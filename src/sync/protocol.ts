/**
 * @module The sync protocol's messages (what `BaseConvexClient` sends and accepts), with a strict
 * parser for client frames: anything malformed is a ProtocolError, which Convex answers with a
 * FatalError (see ClientFatalError).
 */
import type { JSONValue } from '../values/index.ts'
import { functionPathError } from '../functions/registry.ts'

/** A client frame that isn't a message of the protocol (or names no function path). */
export class ProtocolError extends Error {
  override name = 'ProtocolError'
}

/**
 * A client's mistake Convex answers with a `FatalError` message and a close without a code (a
 * user error, its message as Convex's): the client reports it and does not connect again.
 */
export class ClientFatalError extends Error {
  override name = 'ClientFatalError'
}

export interface StateVersion {
  querySet: number
  identity: number
  ts: string
}

export type QueryModification =
  | { type: 'Add'; queryId: number; udfPath: string; args: JSONValue[]; journal?: string | null; componentPath?: string }
  | { type: 'Remove'; queryId: number }

export type ClientMessage =
  | { type: 'Connect'; sessionId: string; connectionCount: number; lastCloseReason: string | null; maxObservedTimestamp?: string; clientTs?: number }
  | { type: 'ModifyQuerySet'; baseVersion: number; newVersion: number; modifications: QueryModification[] }
  | { type: 'Mutation'; requestId: number; udfPath: string; args: JSONValue[]; componentPath?: string }
  | { type: 'Action'; requestId: number; udfPath: string; args: JSONValue[]; componentPath?: string }
  | { type: 'Authenticate'; baseVersion: number; tokenType: 'Admin' | 'User' | 'None'; value?: string; impersonating?: Record<string, JSONValue> }
  | { type: 'Event'; eventType: string; event: JSONValue }

export type ServerModification =
  | { type: 'QueryUpdated'; queryId: number; value: JSONValue; logLines: string[]; journal: string | null }
  | { type: 'QueryFailed'; queryId: number; errorMessage: string; logLines: string[]; errorData?: JSONValue; journal: string | null }
  | { type: 'QueryRemoved'; queryId: number }

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function nat(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ProtocolError(`${what} must be a non-negative integer`)
  return v
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new ProtocolError(`${what} must be a string`)
  return v
}

/** A function's path, as Convex parses a `udfPath` (UdfPath): its error in Convex's words. */
function udfPath(v: unknown): string {
  const path = str(v, 'udfPath')
  const problem = functionPathError(path)
  if (problem !== null) throw new ProtocolError(problem)
  return path
}

function argsArray(v: unknown): JSONValue[] {
  if (!Array.isArray(v)) throw new ProtocolError('args must be an array')
  return v as JSONValue[]
}

/** Parses one text frame from a client. */
export function parseClientMessage(text: string): ClientMessage {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    throw new ProtocolError('Message is not valid JSON')
  }
  if (!isObject(m)) throw new ProtocolError('Message must be a JSON object')
  switch (m.type) {
    case 'Connect':
      return {
        type: 'Connect',
        sessionId: str(m.sessionId, 'sessionId'),
        connectionCount: nat(m.connectionCount ?? 0, 'connectionCount'),
        lastCloseReason: typeof m.lastCloseReason === 'string' ? m.lastCloseReason : null,
        ...(typeof m.maxObservedTimestamp === 'string' ? { maxObservedTimestamp: m.maxObservedTimestamp } : {}),
      }
    case 'ModifyQuerySet': {
      if (!Array.isArray(m.modifications)) throw new ProtocolError('modifications must be an array')
      const modifications = m.modifications.map((mod): QueryModification => {
        if (!isObject(mod)) throw new ProtocolError('modification must be an object')
        if (mod.type === 'Add') {
          return {
            type: 'Add',
            queryId: nat(mod.queryId, 'queryId'),
            udfPath: udfPath(mod.udfPath),
            args: argsArray(mod.args),
            journal: typeof mod.journal === 'string' ? mod.journal : null,
            ...(typeof mod.componentPath === 'string' ? { componentPath: mod.componentPath } : {}),
          }
        }
        if (mod.type === 'Remove') return { type: 'Remove', queryId: nat(mod.queryId, 'queryId') }
        throw new ProtocolError(`Unknown query modification ${JSON.stringify(mod.type)}`)
      })
      return { type: 'ModifyQuerySet', baseVersion: nat(m.baseVersion, 'baseVersion'), newVersion: nat(m.newVersion, 'newVersion'), modifications }
    }
    case 'Mutation':
    case 'Action':
      return {
        type: m.type,
        requestId: nat(m.requestId, 'requestId'),
        udfPath: udfPath(m.udfPath),
        args: argsArray(m.args),
        ...(typeof m.componentPath === 'string' ? { componentPath: m.componentPath } : {}),
      }
    case 'Authenticate': {
      const tokenType = m.tokenType
      if (tokenType !== 'Admin' && tokenType !== 'User' && tokenType !== 'None') throw new ProtocolError('tokenType must be Admin, User or None')
      return {
        type: 'Authenticate',
        baseVersion: nat(m.baseVersion, 'baseVersion'),
        tokenType,
        ...(typeof m.value === 'string' ? { value: m.value } : {}),
        ...(isObject(m.impersonating) ? { impersonating: m.impersonating as Record<string, JSONValue> } : {}),
      }
    }
    case 'Event':
      return { type: 'Event', eventType: String(m.eventType), event: (m.event ?? null) as JSONValue }
  }
  throw new ProtocolError(`Unknown message type ${JSON.stringify(m.type)}`)
}
