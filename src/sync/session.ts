/**
 * @module Session: one client socket of the sync protocol.
 *
 * Versions, as the client checks them:
 *
 *   client sends                          server answers
 *   ModifyQuerySet base=q new=q+1   ───▶  Transition (qs q→q+1, …) with QueryUpdated for each Add
 *   Authenticate base=i             ───▶  Transition (…, id i→i+1, …) re-run under the identity
 *   Mutation #r                     ───▶  MutationResponse #r {ts: C}, then a Transition to ts ≥ C
 *
 * Every Transition starts exactly where the previous one ended and moves the whole query set to
 * one published timestamp: it is only sent once every subscribed entry is clean (valid at the
 * latest published ts), so results never mix timestamps. Messages are handled in order;
 * mutations run one at a time in order, actions concurrently.
 */
import { createHash } from 'node:crypto'
import type WebSocket from 'ws'
import { splitAdminAuthorization, verifyAdminKey } from '../../keybroker/index.ts'
import { operationNotPermitted, permits } from '../auth/admin-permissions.ts'
import { HttpError } from '../util/http-error.ts'
import type { Database } from '../database/database.ts'
import type { FunctionRunner, UdfResult } from '../functions/function-runner.ts'
import { SystemFailure } from '../database/errors.ts'
import { encodeTs } from '../values/index.ts'
import type { JSONValue } from '../values/index.ts'
import { ClientFatalError, parseClientMessage, ProtocolError } from './protocol.ts'
import type { ClientMessage, ServerModification } from './protocol.ts'
import type { QueryEntry, QueryIdentity, Subscriber, SubscriptionManager } from './subscriptions.ts'
import type { MutationLog } from './mutation-log.ts'
import { flatten } from '../util/flatten.ts'
import { uniqueHexId } from '../util/unique-id.ts'
import { errorText } from '../functions/errors.ts'
import type { CallFailure } from '../functions/errors.ts'
import { actingAsIdentity, TOKEN_LEEWAY_MS, tokenExpiryMs } from '../auth/auth.ts'
import type { ClientInfo } from '../http/client-info.ts'
import type { Auth } from '../auth/auth.ts'

export interface SessionDeps {
  readonly auth: Auth
  readonly db: Database
  readonly runner: FunctionRunner
  readonly subscriptions: SubscriptionManager
  readonly mutations: MutationLog
  readonly instanceName: string
  readonly instanceSecret: string
  readonly log: (message: string, fields?: Record<string, unknown>) => void
}

/** Send a Ping after this long without other output (the client gives up after 60 s). */
export const PING_AFTER_MS = 15_000
/** Hold back Transitions while this much is still unsent on the socket (they coalesce meanwhile). */
const SOFT_BUFFER_LIMIT = 4 * 1024 * 1024
/** Close a client that lets this much pile up. */
const HARD_BUFFER_LIMIT = 64 * 1024 * 1024

const RESOLVED: Promise<void> = Promise.resolve()

/** A ModifyQuerySet with more Adds than this lets the event loop run between every so many. */
const MODIFICATIONS_PER_TURN = 500
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

const ANONYMOUS: QueryIdentity = { key: 'anonymous', admin: false, user: null }
const ADMIN: QueryIdentity = { key: 'admin', admin: true, user: null }
/** A read-only admin key's: its queries are an admin's, but it may not write (admin-permissions.ts). */
const READ_ONLY_ADMIN: QueryIdentity = { key: 'admin-read-only', admin: true, readOnly: true, user: null }

interface Subscribed {
  readonly queryId: number
  entry: QueryEntry
  /** The entry version last sent to the client (null: nothing sent yet). */
  sent: number | null
}

function udfArgs(args: JSONValue[]): JSONValue {
  return args.length === 0 ? {} : args[0]!
}

export class Session implements Subscriber {
  #sessionId = ''
  #querySet = 0
  #identityVersion = 0
  /** Fires when the current user token expires (then the session's identity is no longer valid). */
  #expiry: NodeJS.Timeout | null = null
  #identity: QueryIdentity = ANONYMOUS
  /** The JWT of the current user identity (null for admins and anonymous clients). */
  #authToken: string | null = null
  /** The versions the last Transition ended at (what the client holds). */
  #sentQuerySet = 0
  #sentIdentity = 0
  #sentTs = 0n
  /** In the order the client added them; an array, as a Map's table alone outweighs a few entries. */
  #queries: Subscribed[] = []
  #removed: ServerModification[] | null = null
  /** A Transition must reach at least this ts (acknowledging a mutation). */
  #advanceTo = 0n
  /** A Transition is owed even if no version moves (a mutation was answered since the last one). */
  #transitionOwed = false
  // Settled chains go back to the shared RESOLVED: an idle session holds no promise of its own.
  #chain: Promise<void> = RESOLVED
  #mutationChain: Promise<void> = RESOLVED
  #lastSend = Date.now()
  #retry: NodeJS.Timeout | null = null
  #closed = false
  /** Shutting down: new mutations and actions are left unanswered (the client re-sends them). */
  #draining = false

  constructor(
    readonly ws: WebSocket,
    readonly deps: SessionDeps,
    /** Called once when the session ends (one shared function, not a closure per socket). */
    readonly onClosed: (session: Session) => void,
    /** The client the socket was opened by (`ctx.meta.getRequestMetadata()`). */
    readonly client: ClientInfo = { ip: null, userAgent: null },
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return this.#fail(new Error('Binary frames are not part of the protocol'))
      let message: ClientMessage
      try {
        message = parseClientMessage(data.toString())
      } catch (e) {
        return this.#fail(e instanceof ProtocolError ? new ClientFatalError(`Received Invalid JSON on websocket: ${e.message}`) : e)
      }
      const tail = this.#chain.then(() => this.#handle(message)).catch((e: unknown) => this.#fail(e))
      this.#chain = tail
      const reset = () => {
        if (this.#chain === tail) this.#chain = RESOLVED
      }
      void tail.then(reset, reset)
    })
    const close = () => this.#close()
    ws.on('close', close)
    ws.on('error', close)
  }

  #fail(e: unknown): void {
    if (this.#closed) return
    this.deps.log('Closing sync socket', { reason: e instanceof SystemFailure ? e.code : `${(e as Error)?.name}: ${(e as Error)?.message ?? String(e)}` })
    if (e instanceof ClientFatalError) {
      // As Convex: the client's own mistake is a FatalError message, then a close without a code.
      this.#send(JSON.stringify({ type: 'FatalError', error: e.message }))
      this.ws.close()
    } else if (e instanceof SystemFailure) {
      // The system's failure is 1013 ("try again later") with its code, which the client meets
      // by connecting again and re-sending what it was waiting for.
      this.ws.close(1013, e.code)
    } else {
      // Anything else is Convex's internal error: 1011, no more said.
      this.ws.close(1011, 'InternalServerError')
    }
    this.#close()
  }

  #close(): void {
    if (this.#closed) return
    this.#closed = true
    this.onClosed(this)
    if (this.#retry !== null) clearTimeout(this.#retry)
    if (this.#expiry !== null) clearTimeout(this.#expiry)
    for (const q of this.#queries) this.deps.subscriptions.unsubscribe(this, q.entry)
    this.#queries = []
  }

  #send(text: string): void {
    if (this.#closed || this.ws.readyState !== this.ws.OPEN) return
    this.ws.send(text)
    this.#lastSend = Date.now()
  }

  async #handle(m: ClientMessage): Promise<void> {
    // Messages still queued when the socket closed are dropped (their work would be for no one).
    if (this.#closed) return
    switch (m.type) {
      case 'Connect':
        this.#sessionId = m.sessionId
        return
      case 'ModifyQuerySet': {
        if (m.baseVersion !== this.#querySet) throw new ClientFatalError(`Base version ${m.baseVersion} passed up doesn't match the current version ${this.#querySet}`)
        if (m.newVersion !== m.baseVersion + 1) throw new Error('newVersion must be baseVersion + 1')
        // By id for this message (a frame may carry hundreds of thousands of modifications);
        // a Map keeps the order the array had, and a re-added id goes to the end.
        const byId = new Map<number, Subscribed>()
        for (const q of this.#queries) byId.set(q.queryId, q)
        const dropped: Subscribed[] = []
        try {
          let n = 0
          for (const mod of m.modifications) {
            if (++n % MODIFICATIONS_PER_TURN === 0) {
              // Thousands of Adds: let other clients' I/O in between.
              await nextTurn()
              if (this.#closed) {
                // #close let go of the queries held before this message; these are the new ones.
                for (const q of byId.values()) this.deps.subscriptions.unsubscribe(this, q.entry)
                return
              }
            }
            if (mod.type === 'Add') {
              if (byId.has(mod.queryId)) throw new Error(`Duplicate query ID: ${mod.queryId}`)
              const componentPath = this.#componentPath(mod.componentPath, this.#identity)
              const entry = this.deps.subscriptions.subscribe(this, mod.udfPath, udfArgs(mod.args), this.#identity, mod.journal ?? null, componentPath)
              byId.set(mod.queryId, { queryId: mod.queryId, entry, sent: null })
            } else {
              const q = byId.get(mod.queryId)
              if (q === undefined) throw new Error(`Nonexistent query id: ${mod.queryId}`)
              byId.delete(mod.queryId)
              dropped.push(q)
              ;(this.#removed ??= []).push({ type: 'QueryRemoved', queryId: mod.queryId })
            }
          }
        } catch (e) {
          // The session fails: keep every entry it subscribed to where #close will let go of it.
          this.#queries = [...byId.values(), ...dropped]
          throw e
        }
        // An exact-size array (an idle session stays small).
        this.#queries = [...byId.values()]
        if (dropped.length > 0) {
          // Two query ids with the same function and arguments share one cache entry: the session
          // stays subscribed to it while any of its ids still uses it.
          const kept = new Set(this.#queries.map((q) => q.entry))
          for (const q of dropped) if (!kept.has(q.entry)) this.deps.subscriptions.unsubscribe(this, q.entry)
        }
        this.#querySet = m.newVersion
        this.#trySend()
        return
      }
      case 'Authenticate':
        return this.#authenticate(m)
      case 'Mutation': {
        if (this.#draining) return
        // Runs as whoever the client was when it sent it, even if it authenticates again meanwhile.
        const identity = this.#identity
        const authToken = this.#authToken
        const componentPath = this.#componentPath(m.componentPath, identity)
        const run = () => this.#mutation(m.requestId, m.udfPath, udfArgs(m.args), identity, authToken, componentPath)
        const tail = this.#mutationChain.then(run, run)
        this.#mutationChain = tail
        const reset = () => {
          if (this.#mutationChain === tail) this.#mutationChain = RESOLVED
        }
        void tail.then(reset, reset)
        return
      }
      case 'Action':
        if (this.#draining) return
        void this.#action(m.requestId, m.udfPath, udfArgs(m.args), this.#componentPath(m.componentPath, this.#identity))
        return
      case 'Event':
        return
    }
  }

  async #authenticate(m: Extract<ClientMessage, { type: 'Authenticate' }>): Promise<void> {
    if (m.baseVersion !== this.#identityVersion) throw new Error(`Identity base version ${m.baseVersion} doesn't match the current version ${this.#identityVersion}`)
    let identity: QueryIdentity
    if (m.tokenType === 'None') identity = ANONYMOUS
    else if (m.tokenType === 'Admin') {
      const { adminKey } = splitAdminAuthorization(m.value ?? '')
      const verified = verifyAdminKey(adminKey, this.deps.instanceName, this.deps.instanceSecret)
      if (!verified.ok) {
        return this.#authError('The provided admin key was invalid for this instance')
      }
      const readOnly = verified.kind === 'read-only'
      const acting = m.impersonating
      if (acting !== undefined && !permits(verified.kind, 'ActAsUser')) return this.#authError(operationNotPermitted('ActAsUser').message)
      if (acting === undefined) identity = readOnly ? READ_ONLY_ADMIN : ADMIN
      else {
        const user = actingAsIdentity(Buffer.from(JSON.stringify(acting)).toString('base64'))
        identity = { key: `admin:${user.tokenIdentifier}`, admin: true, user }
      }
    } else {
      try {
        const user = await this.deps.auth.verify(m.value ?? '')
        identity = { key: `user:${user.tokenIdentifier}`, admin: false, user }
      } catch (e) {
        return this.#authError((e as Error).message)
      }
    }
    if (this.#closed) return
    this.#authToken = m.tokenType === 'User' ? (m.value ?? null) : null
    this.#identityVersion++
    this.#expireAt(m.tokenType === 'User' ? tokenExpiryMs(m.value ?? '') : null)
    if (identity.key !== this.#identity.key) {
      this.#identity = identity
      // A component's queries stay the admin's: they fail the session for anyone else (as Convex).
      for (const q of this.#queries) this.#componentPath(q.entry.componentPath, identity)
      for (const q of this.#queries) {
        const old = q.entry
        q.entry = this.deps.subscriptions.subscribe(this, old.path, old.args, identity, old.journal, old.componentPath)
        q.sent = null
        this.deps.subscriptions.unsubscribe(this, old)
      }
    }
    this.#trySend()
  }

  #authError(error: string, authUpdateAttempted = true): void {
    this.#send(JSON.stringify({ type: 'AuthError', error, baseVersion: this.#identityVersion, authUpdateAttempted }))
    this.ws.close(1000, 'AuthError')
    this.#close()
  }

  /**
   * A user token stops being valid at its `exp` (plus the verifier's leeway): the session then
   * gets an AuthError for its established identity and is closed, and the client fetches a fresh
   * token and reconnects (it normally refreshes 10 s before `exp`, so this is rare).
   */
  #expireAt(expMs: number | null): void {
    if (this.#expiry !== null) clearTimeout(this.#expiry)
    this.#expiry = null
    if (expMs === null) return
    // setTimeout takes at most 2^31-1 ms; a later expiry is re-armed when that fires.
    const wait = Math.min(Math.max(0, expMs + TOKEN_LEEWAY_MS - Date.now()), 2 ** 31 - 1)
    this.#expiry = setTimeout(() => {
      if (Date.now() < expMs + TOKEN_LEEWAY_MS) return this.#expireAt(expMs)
      this.#authError('Token expired: the JWT\'s "exp" is in the past', false)
    }, wait)
    this.#expiry.unref()
  }

  /**
   * The component a query, mutation or action names (absent or '': the app). Only admins may name
   * another: as Convex's sync worker, anyone else's session fails (closed as a server error).
   */
  #componentPath(path: string | undefined, identity: QueryIdentity): string {
    if (path === undefined || path === '') return ''
    if (!identity.admin) throw new Error('Only admin or system users can call functions on non-root components directly')
    return path
  }

  async #mutation(requestId: number, path: string, args: JSONValue, identity: QueryIdentity, authToken: string | null, componentPath: string): Promise<void> {
    const key = `${this.#sessionId}:${requestId}`
    const requestKey = this.#sessionId === '' ? undefined : { sessionId: this.#sessionId, requestId }
    const request = { requestId: this.#requestId(requestId), ...this.client, authToken }
    // A mutation queued behind one that closed the socket waits for the client to send it again.
    if (this.#closed) return
    let result: UdfResult
    try {
      result = await this.deps.mutations.run(key, () => this.deps.runner.call('mutation', path, args, { admin: identity.admin, readOnly: identity.readOnly, identity: identity.user, requestKey, request, source: 'sync', componentPath }).catch(crashed))
    } catch (e) {
      return this.#fail(e)
    }
    if (result.ok) {
      // A mutation that wrote nothing has no commit of its own: it is acknowledged at the latest
      // published ts, which it read at or after.
      const ts = result.ts ?? this.deps.db.committer.publishedTs
      if (ts > this.#advanceTo) this.#advanceTo = ts
      // The client settles a mutation only on a Transition after its response, even one that
      // changes nothing (as Convex, which schedules a Transition after every mutation).
      this.#transitionOwed = true
      this.#send(`{"type":"MutationResponse","requestId":${requestId},"success":true,"result":${result.value},"ts":${JSON.stringify(encodeTs(ts))},"logLines":${JSON.stringify(result.logLines)}}`)
      this.#trySend()
    } else {
      this.#send(failureMessage('MutationResponse', requestId, this.#requestId(requestId), result, true))
    }
  }

  async #action(requestId: number, path: string, args: JSONValue, componentPath: string): Promise<void> {
    const request = { requestId: this.#requestId(requestId), ...this.client, authToken: this.#authToken }
    let result: UdfResult
    try {
      result = await this.deps.runner.call('action', path, args, { admin: this.#identity.admin, readOnly: this.#identity.readOnly, identity: this.#identity.user, request, source: 'sync', componentPath }).catch(crashed)
    } catch (e) {
      return this.#fail(e)
    }
    if (result.ok) {
      this.#send(`{"type":"ActionResponse","requestId":${requestId},"success":true,"result":${result.value},"logLines":${JSON.stringify(result.logLines)}}`)
    } else {
      this.#send(failureMessage('ActionResponse', requestId, this.#requestId(requestId), result, false))
    }
  }

  /**
   * Stops taking mutations and actions: those that arrive now go unanswered, and the client sends
   * them again once it has reconnected (to this backend restarted, or another). Resolves once the
   * mutations already taken are answered.
   */
  drain(): Promise<void> {
    this.#draining = true
    return this.#mutationChain.then(
      () => {},
      () => {},
    )
  }

  /** Convex's request id for a socket request: the first 16 hex digits of sha256("<session>|<n>"). */
  #requestId(requestId: number): string {
    return createHash('sha256').update(`${this.#sessionId}|${requestId}`).digest('hex').slice(0, 16)
  }

  /** Called periodically by the server: keeps an idle client from timing out. */
  heartbeat(now: number): void {
    if (now - this.#lastSend >= PING_AFTER_MS) this.#send('{"type":"Ping"}')
  }

  entryUpdated(): void {
    this.#trySend()
  }

  /** Sends a Transition if the client is owed one and every subscribed result is current. */
  #trySend(): void {
    if (this.#closed) return
    for (const q of this.#queries) if (q.entry.dirty || q.entry.result === null) return
    const ts = this.deps.db.committer.publishedTs > this.#sentTs ? this.deps.db.committer.publishedTs : this.#sentTs
    // Modifications are spliced as text: a result's JSON is shared by every subscriber of the entry.
    const modifications: string[] = this.#removed?.map((m) => JSON.stringify(m)) ?? []
    for (const q of this.#queries) {
      if (q.sent !== q.entry.version) modifications.push(modificationJson(q.queryId, q.entry))
    }
    const owed = modifications.length > 0 || this.#querySet !== this.#sentQuerySet || this.#identityVersion !== this.#sentIdentity || this.#advanceTo > this.#sentTs || this.#transitionOwed
    if (!owed) return
    const buffered = this.ws.bufferedAmount
    if (buffered > HARD_BUFFER_LIMIT) return this.#fail(new Error('SubscriptionsWorkerFullError: the client is not reading its updates'))
    if (buffered > SOFT_BUFFER_LIMIT) {
      // Coalesce: try again later with whatever is newest then.
      this.#retry ??= setTimeout(() => {
        this.#retry = null
        this.#trySend()
      }, 50)
      return
    }
    for (const q of this.#queries) q.sent = q.entry.version
    this.#removed = null
    this.#transitionOwed = false
    const start = versionJson(this.#sentQuerySet, this.#sentIdentity, this.#sentTs)
    this.#sentQuerySet = this.#querySet
    this.#sentIdentity = this.#identityVersion
    this.#sentTs = ts
    const end = versionJson(this.#querySet, this.#identityVersion, ts)
    this.#send(`{"type":"Transition","startVersion":${start},"endVersion":${end},"modifications":[${modifications.join(',')}]}`)
  }
}

function versionJson(querySet: number, identity: number, ts: bigint): string {
  return `{"querySet":${querySet},"identity":${identity},"ts":"${encodeTs(ts)}"}`
}

/** The entry's current result as a QueryUpdated/QueryFailed modification (text cached per version). */
function modificationJson(queryId: number, entry: QueryEntry): string {
  let body = modificationCache.get(entry)
  if (body === undefined || body.version !== entry.version) {
    const r = entry.result!
    const journal = JSON.stringify(entry.journal)
    const text = r.ok
      ? `"type":"QueryUpdated","value":${r.value},"logLines":${JSON.stringify(r.logLines)},"journal":${journal}}`
      : `"type":"QueryFailed","errorMessage":${JSON.stringify(serverError(uniqueHexId(), r))},"logLines":${JSON.stringify(r.logLines)},"journal":${journal}${r.data === undefined ? '' : `,"errorData":${r.data}`}}`
    body = { version: entry.version, text: flatten(text) }
    modificationCache.set(entry, body)
  }
  return `{"queryId":${queryId},${body.text}`
}

const modificationCache = new WeakMap<QueryEntry, { version: number; text: string }>()

/**
 * A call that failed in the backend rather than in the function: the system's failure (a
 * mutation that conflicted on every attempt, an overload) is thrown, to close the socket as
 * Convex does; anything else (the database unreachable, say) gets Convex's words for an internal
 * error, never the cause's own text.
 */
function crashed(e: unknown): UdfResult {
  // The system's failure closes the socket (see #fail): the client sends the call again.
  if (e instanceof SystemFailure) throw e
  // A read-only admin key's refusal is the caller's to read, as over HTTP.
  const refused = e instanceof HttpError && e.code === 'OperationNotPermitted'
  return { ok: false, message: refused ? (e as Error).message : "Your request couldn't be completed. Try again later.", logLines: [] }
}

/** A failure as Convex sends it to clients: `[Request ID: …] Server Error`, then the error's text. */
function serverError(requestId: string, f: CallFailure): string {
  return `[Request ID: ${requestId}] Server Error\n${errorText(f)}\n`
}

function failureMessage(type: string, requestId: number, serverRequestId: string, result: CallFailure, withTs: boolean): string {
  const m: Record<string, unknown> = { type, requestId, success: false, result: serverError(serverRequestId, result), logLines: result.logLines }
  if (withTs) m.ts = null
  if (result.data !== undefined) m.errorData = JSON.parse(result.data) as JSONValue
  return JSON.stringify(m)
}
