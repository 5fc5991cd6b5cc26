/**
 * @module WebAssembly's promise-returning entry points, made on its synchronous ones.
 *
 * V8 compiles `WebAssembly.compile/instantiate` on background tasks whose results it posts back
 * to the isolate's task queue; isolated-vm never runs that queue while calls are driven with
 * `applySync`, so their promises would never settle ("Returned promise will never resolve").
 * Convex's runtime settles them, and libraries such as @convex-dev/geospatial (S2 in Go, compiled
 * to WebAssembly) await them at import time. Here each compiles synchronously and settles its
 * promise with the result, or rejects it with the error the constructor threw (a CompileError,
 * LinkError, RuntimeError or TypeError, as the asynchronous form would).
 */
// The sandbox's own `WebAssembly`, as far as these shims use it (the runtime is typed without the DOM's lib).
type WasmModule = object
type WasmInstance = { readonly exports: Record<string, unknown> }
type Imports = object | undefined
type Bytes = ArrayBuffer | ArrayBufferView
export interface Wasm {
  Module: new (bytes: Bytes) => WasmModule
  Instance: new (module: WasmModule, imports?: Imports) => WasmInstance
}
type Source = Bytes | WasmModule
type Instantiated = { module: WasmModule; instance: WasmInstance }

export function installWasm(wasm: Wasm): void {
  const settle = <T>(make: () => T): Promise<T> => {
    try {
      return Promise.resolve(make())
    } catch (e) {
      return Promise.reject(e)
    }
  }
  const bytesOf = async (source: Response | PromiseLike<Response>): Promise<ArrayBuffer> => {
    const response = await source
    if (typeof (response as Response)?.arrayBuffer !== 'function') throw new TypeError('WebAssembly: Argument 0 must be a Response or a Promise of a Response')
    return await (response as Response).arrayBuffer()
  }
  const shims = {
    compile(bytes: Bytes): Promise<WasmModule> {
      return settle(() => new wasm.Module(bytes))
    },
    instantiate(source: Source, ...[imports]: [Imports?]): Promise<WasmInstance | Instantiated> {
      return settle(() => {
        if (source instanceof wasm.Module) return new wasm.Instance(source, imports)
        const module = new wasm.Module(source as Bytes)
        return { module, instance: new wasm.Instance(module, imports) }
      })
    },
    async compileStreaming(source: Response | PromiseLike<Response>): Promise<WasmModule> {
      return new wasm.Module(await bytesOf(source))
    },
    async instantiateStreaming(source: Response | PromiseLike<Response>, ...[imports]: [Imports?]): Promise<Instantiated> {
      const module = new wasm.Module(await bytesOf(source))
      return { module, instance: new wasm.Instance(module, imports) }
    },
  }
  // As the native ones: `length` 1 (the imports are optional), not enumerable.
  for (const [name, fn] of Object.entries(shims)) {
    Object.defineProperty(wasm, name, { value: fn, writable: true, configurable: true, enumerable: false })
  }
}
