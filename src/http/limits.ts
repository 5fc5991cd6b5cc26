/**
 * @module The request-body limits of both ports, in one place: what each route reads at most, and
 * what a `Expect: 100-continue` request is checked against before its body is sent.
 */
import { MAX_UPLOAD_BYTES } from '../files/file-storage.ts'

/** Function calls and most routes: Convex's MAX_BACKEND_PUBLIC_API_REQUEST_SIZE (16 MiB of arguments, and 2000 bytes for the rest). */
export const MAX_FUNCTION_BODY = 16 * 1024 * 1024 + 2000
/** A push (decompressed). */
export const MAX_PUSH_BODY = 256 * 1024 * 1024
/** One part of an import upload. */
export const MAX_IMPORT_PART = 512 * 1024 * 1024
/** An HTTP action's request (Convex's limit is 20 MiB). */
export const MAX_HTTP_ACTION_BODY = 20 * 1024 * 1024

/** `POST /echo` (the CLI's network test; Convex's MAX_ECHO_BYTES). */
export const MAX_ECHO_BODY = 128 * 1024 * 1024

/** The largest body a route of the API port takes. */
export function apiBodyLimit(path: string): number {
  if (path === '/echo') return MAX_ECHO_BODY
  if (path === '/api/storage/upload') return MAX_UPLOAD_BYTES
  if (path === '/api/import/upload_part') return MAX_IMPORT_PART
  if (path === '/api/get_config_hashes' || path.startsWith('/api/deploy2/')) return MAX_PUSH_BODY
  if (path.startsWith('/http/')) return MAX_HTTP_ACTION_BODY
  return MAX_FUNCTION_BODY
}
