/**
 * @module RequestStats: requests answered by a port's `fetch` since start-up and their summed time
 * to a response (headers ready; a streamed body's later bytes not counted), for the Health page
 * (`/api/concave/metrics`: `requests`, `requestMs`).
 */
export class RequestStats {
  requests = 0
  requestMs = 0

  /** `fetch`, counted: each request once it is answered (or has failed). */
  counting<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>): (req: Request, ...rest: A) => Promise<Response> {
    return async (req, ...rest) => {
      const started = performance.now()
      try {
        return await fetch(req, ...rest)
      } finally {
        this.requests++
        this.requestMs += performance.now() - started
      }
    }
  }
}
