/**
 * @module `DOMException`, `Event`, `CustomEvent` and `EventTarget` (WebIDL and the DOM standard),
 * as far as code outside a document meets them: AbortSignal dispatches its `abort` event through
 * them, and the standard APIs throw DOMExceptions (AbortError, DataCloneError, …).
 */

/** The legacy `code` of each error name (WebIDL's error names table); others have code 0. */
const LEGACY_CODES: Record<string, number> = {
  IndexSizeError: 1,
  HierarchyRequestError: 3,
  WrongDocumentError: 4,
  InvalidCharacterError: 5,
  NoModificationAllowedError: 7,
  NotFoundError: 8,
  NotSupportedError: 9,
  InUseAttributeError: 10,
  InvalidStateError: 11,
  SyntaxError: 12,
  InvalidModificationError: 13,
  NamespaceError: 14,
  InvalidAccessError: 15,
  TypeMismatchError: 17,
  SecurityError: 18,
  NetworkError: 19,
  AbortError: 20,
  URLMismatchError: 21,
  QuotaExceededError: 22,
  TimeoutError: 23,
  InvalidNodeTypeError: 24,
  DataCloneError: 25,
}

/** The constants every DOMException (and the constructor) carries, e.g. `ABORT_ERR = 20`. */
const CODE_CONSTANTS: [string, number][] = [
  ['INDEX_SIZE_ERR', 1], ['DOMSTRING_SIZE_ERR', 2], ['HIERARCHY_REQUEST_ERR', 3], ['WRONG_DOCUMENT_ERR', 4],
  ['INVALID_CHARACTER_ERR', 5], ['NO_DATA_ALLOWED_ERR', 6], ['NO_MODIFICATION_ALLOWED_ERR', 7], ['NOT_FOUND_ERR', 8],
  ['NOT_SUPPORTED_ERR', 9], ['INUSE_ATTRIBUTE_ERR', 10], ['INVALID_STATE_ERR', 11], ['SYNTAX_ERR', 12],
  ['INVALID_MODIFICATION_ERR', 13], ['NAMESPACE_ERR', 14], ['INVALID_ACCESS_ERR', 15], ['VALIDATION_ERR', 16],
  ['TYPE_MISMATCH_ERR', 17], ['SECURITY_ERR', 18], ['NETWORK_ERR', 19], ['ABORT_ERR', 20],
  ['URL_MISMATCH_ERR', 21], ['QUOTA_EXCEEDED_ERR', 22], ['TIMEOUT_ERR', 23], ['INVALID_NODE_TYPE_ERR', 24],
  ['DATA_CLONE_ERR', 25],
]

/** Each DOMException's name (a WeakMap: the name getter may run while Error's constructor does). */
const names = new WeakMap<object, string>()

export class DOMExceptionPolyfill extends Error {
  constructor(message = '', name = 'Error') {
    super(String(message))
    names.set(this, String(name))
  }
  override get name(): string {
    return names.get(this) ?? 'Error'
  }
  get code(): number {
    return LEGACY_CODES[this.name] ?? 0
  }
  get [Symbol.toStringTag](): string {
    return 'DOMException'
  }
}
for (const [key, value] of CODE_CONSTANTS) {
  Object.defineProperty(DOMExceptionPolyfill, key, { value, enumerable: true })
  Object.defineProperty(DOMExceptionPolyfill.prototype, key, { value, enumerable: true })
}

/** `performance.now()`, for Event.timeStamp (set once performance is installed). */
let timeStamp: () => number = () => 0
export function setEventClock(now: () => number): void {
  timeStamp = now
}

export interface EventInit {
  bubbles?: boolean
  cancelable?: boolean
  composed?: boolean
}

/** Events made here are never trusted (the user agent's own would be). */
const isTrustedGetter = function isTrusted(): boolean {
  return false
}

export class EventPolyfill {
  static readonly NONE = 0
  static readonly CAPTURING_PHASE = 1
  static readonly AT_TARGET = 2
  static readonly BUBBLING_PHASE = 3
  readonly NONE = 0
  readonly CAPTURING_PHASE = 1
  readonly AT_TARGET = 2
  readonly BUBBLING_PHASE = 3
  readonly type: string
  readonly bubbles: boolean
  readonly cancelable: boolean
  readonly composed: boolean
  readonly timeStamp: number
  declare readonly isTrusted: boolean
  #defaultPrevented = false
  #inPassiveListener = false
  /** @internal Set while the event is dispatched, and after. */
  _target: EventTargetPolyfill | null = null
  /** @internal */
  _currentTarget: EventTargetPolyfill | null = null
  /** @internal */
  _dispatching = false
  /** @internal */
  _stopPropagation = false
  /** @internal */
  _stopImmediate = false
  constructor(type: string, init: EventInit = {}) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.")
    this.type = String(type)
    this.bubbles = init.bubbles === true
    this.cancelable = init.cancelable === true
    this.composed = init.composed === true
    this.timeStamp = timeStamp()
    // An own accessor on every event, the same getter for all ([LegacyUnforgeable], as in Convex).
    Object.defineProperty(this, 'isTrusted', { get: isTrustedGetter, enumerable: true, configurable: false })
  }
  get target(): EventTargetPolyfill | null {
    return this._target
  }
  get srcElement(): EventTargetPolyfill | null {
    return this._target
  }
  get currentTarget(): EventTargetPolyfill | null {
    return this._currentTarget
  }
  get eventPhase(): number {
    return this._dispatching ? 2 : 0
  }
  get defaultPrevented(): boolean {
    return this.#defaultPrevented
  }
  get returnValue(): boolean {
    return !this.#defaultPrevented
  }
  set returnValue(value: boolean) {
    if (!value) this.preventDefault()
  }
  get cancelBubble(): boolean {
    return this._stopPropagation
  }
  set cancelBubble(value: boolean) {
    if (value) this._stopPropagation = true
  }
  composedPath(): EventTargetPolyfill[] {
    return this._dispatching && this._currentTarget !== null ? [this._currentTarget] : []
  }
  preventDefault(): void {
    if (this.cancelable && !this.#inPassiveListener) this.#defaultPrevented = true
  }
  stopPropagation(): void {
    this._stopPropagation = true
  }
  stopImmediatePropagation(): void {
    this._stopPropagation = true
    this._stopImmediate = true
  }
  /** @internal */
  _setPassive(passive: boolean): void {
    this.#inPassiveListener = passive
  }
  get [Symbol.toStringTag](): string {
    return 'Event'
  }
}

export class CustomEventPolyfill extends EventPolyfill {
  readonly detail: unknown
  constructor(type: string, init: EventInit & { detail?: unknown } = {}) {
    super(type, init)
    this.detail = init.detail ?? null
  }
  override get [Symbol.toStringTag](): string {
    return 'CustomEvent'
  }
}

type Listener = ((event: EventPolyfill) => unknown) | { handleEvent(event: EventPolyfill): unknown }
interface Registration {
  callback: Listener
  capture: boolean
  once: boolean
  passive: boolean
  removed: boolean
}
type ListenerOptions = boolean | { capture?: boolean; once?: boolean; passive?: boolean; signal?: { aborted: boolean; addEventListener(type: string, fn: () => void): void } }

/** Where an exception thrown by a listener goes (the standard "reports" it and dispatch goes on). */
let reportException: (e: unknown) => void = () => {}
export function setExceptionReporter(report: (e: unknown) => void): void {
  reportException = report
}

/**
 * Each target's listeners, by event type. Kept beside the target rather than in it: the methods
 * also work on the global object (an EventTarget in Convex, as in browsers), and called with no
 * `this` (`const { addEventListener } = EventTarget.prototype`) they act on it.
 */
const listenerLists = new WeakMap<object, Map<string, Registration[]>>()

function listenersOf(target: object | undefined): Map<string, Registration[]> {
  const key = target ?? globalThis
  let lists = listenerLists.get(key)
  if (lists === undefined) listenerLists.set(key, (lists = new Map()))
  return lists
}

/**
 * Listeners a call added to the global object, removed when the next call (or module load) begins:
 * each Convex call starts in a fresh context. (Those a module adds at its top level stay: Concave
 * evaluates a module once per isolate.) Null outside a call.
 */
let callListeners: { lists: Map<string, Registration[]>; type: string; registration: Registration }[] | null = null

/** Drops the listeners the last call added to the global object; `inCall`: track the next call's. */
export function resetCallListeners(inCall: boolean): void {
  if (callListeners !== null) for (const { lists, type, registration } of callListeners) removeRegistration(lists, type, registration)
  callListeners = inCall ? [] : null
}

export class EventTargetPolyfill {
  addEventListener(type: string, callback: Listener | null, options?: ListenerOptions): void {
    if (callback === null || callback === undefined) return
    const o = typeof options === 'object' && options !== null ? options : { capture: options === true }
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined
    if (signal?.aborted === true) return
    const key = String(type)
    const lists = listenersOf(this)
    let list = lists.get(key)
    if (list === undefined) lists.set(key, (list = []))
    const capture = o.capture === true
    if (list.some((r) => r.callback === callback && r.capture === capture)) return
    const registration: Registration = { callback, capture, once: o.once === true, passive: o.passive === true, removed: false }
    list.push(registration)
    if (callListeners !== null && ((this as unknown) ?? globalThis) === globalThis) callListeners.push({ lists, type: key, registration })
    signal?.addEventListener('abort', () => removeRegistration(lists, key, registration))
  }

  removeEventListener(type: string, callback: Listener | null, options?: boolean | { capture?: boolean }): void {
    const capture = typeof options === 'object' && options !== null ? options.capture === true : options === true
    const key = String(type)
    const lists = listenersOf(this)
    const found = lists.get(key)?.find((r) => r.callback === callback && r.capture === capture)
    if (found !== undefined) removeRegistration(lists, key, found)
  }

  dispatchEvent(event: EventPolyfill): boolean {
    if (!(event instanceof EventPolyfill)) throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.")
    if (event._dispatching) throw new DOMExceptionPolyfill('The event is already being dispatched.', 'InvalidStateError')
    const target = (this ?? globalThis) as EventTargetPolyfill
    const lists = listenersOf(target)
    event._dispatching = true
    event._target = target
    event._currentTarget = target
    try {
      // Listeners added while dispatching wait for the next event; removed ones are skipped.
      for (const r of [...(lists.get(event.type) ?? [])]) {
        if (r.removed) continue
        if (r.once) removeRegistration(lists, event.type, r)
        event._setPassive(r.passive)
        try {
          if (typeof r.callback === 'function') r.callback.call(target, event)
          else r.callback.handleEvent(event)
        } catch (e) {
          reportException(e)
        }
        event._setPassive(false)
        if (event._stopImmediate) break
      }
    } finally {
      event._dispatching = false
      event._currentTarget = null
    }
    return !event.defaultPrevented
  }

  get [Symbol.toStringTag](): string {
    return 'EventTarget'
  }
}

function removeRegistration(lists: Map<string, Registration[]>, type: string, registration: Registration): void {
  registration.removed = true
  const list = lists.get(type)
  if (list === undefined) return
  const at = list.indexOf(registration)
  if (at !== -1) list.splice(at, 1)
}

/** An AbortSignal's default reason, as Node and the abort-controller polyfill Convex uses give it. */
function defaultAbortReason(): DOMExceptionPolyfill {
  return new DOMExceptionPolyfill('This operation was aborted', 'AbortError')
}

export class AbortSignalPolyfill extends EventTargetPolyfill {
  #aborted = false
  #reason: unknown = undefined
  #onabort: ((event: EventPolyfill) => unknown) | null = null
  constructor(key?: symbol) {
    super()
    if (key !== SIGNAL_KEY) throw new TypeError('Illegal constructor')
  }
  get aborted(): boolean {
    return this.#aborted
  }
  get reason(): unknown {
    return this.#reason
  }
  /** The `onabort` handler: called in the order it was first set among the abort listeners. */
  get onabort(): ((event: EventPolyfill) => unknown) | null {
    return this.#onabort
  }
  set onabort(handler: ((event: EventPolyfill) => unknown) | null) {
    const first = this.#onabort === null
    this.#onabort = typeof handler === 'function' ? handler : null
    if (first && this.#onabort !== null) this.addEventListener('abort', this.#callHandler)
  }
  readonly #callHandler = (event: EventPolyfill): unknown => this.#onabort?.call(this, event)
  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason
  }
  /** @internal */
  _abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason === undefined ? defaultAbortReason() : reason
    this.dispatchEvent(new EventPolyfill('abort'))
  }
  static abort(reason?: unknown): AbortSignalPolyfill {
    const s = new AbortSignalPolyfill(SIGNAL_KEY)
    s._abort(reason)
    return s
  }
  static timeout(ms: number): AbortSignalPolyfill {
    const s = new AbortSignalPolyfill(SIGNAL_KEY)
    ;(globalThis as { setTimeout: (fn: () => void, ms: number) => unknown }).setTimeout(() => s._abort(new DOMExceptionPolyfill('The operation was aborted due to timeout', 'TimeoutError')), ms)
    return s
  }
  /** A signal that aborts as soon as any of `signals` does, with its reason. */
  static any(signals: Iterable<AbortSignalPolyfill>): AbortSignalPolyfill {
    const s = new AbortSignalPolyfill(SIGNAL_KEY)
    const list = [...signals]
    const done = list.find((x) => x.aborted)
    if (done !== undefined) s._abort(done.reason)
    else for (const x of list) x.addEventListener('abort', () => s._abort(x.reason), { once: true })
    return s
  }
  override get [Symbol.toStringTag](): string {
    return 'AbortSignal'
  }
}
const SIGNAL_KEY = Symbol('AbortSignal')

export class AbortControllerPolyfill {
  readonly #signal = new AbortSignalPolyfill(SIGNAL_KEY)
  get signal(): AbortSignalPolyfill {
    return this.#signal
  }
  abort(reason?: unknown): void {
    this.#signal._abort(reason)
  }
  get [Symbol.toStringTag](): string {
    return 'AbortController'
  }
}
