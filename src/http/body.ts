/**
 * @module Reading request bodies with a size limit, chunk by chunk, so an oversized body is
 * refused as soon as it passes the limit instead of after it is all in memory.
 */

/** The whole stream as one Buffer (empty for no body), or null once it passes `limit` bytes. */
export async function readLimited(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let size = 0
  if (stream !== null) {
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength
      if (size > limit) return null
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    }
  }
  return Buffer.concat(chunks, size)
}
