// Import of a snapshot zip with stored files (`BENCH_ONLY=import`): `npx convex import` of a zip
// that `npx convex export --include-file-storage` made, beside extracting the same zip's entries
// to disk with yauzl in the same run; with the importing backend's peak RSS growth.
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { openPromise } from 'yauzl'

const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

/** Every entry of the zip written to a folder, streamed as the backend's import reads it. */
async function extract(zipPath, dir) {
  const zip = await openPromise(zipPath, { lazyEntries: true, autoClose: false })
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue
      const to = join(dir, entry.fileName.replaceAll('/', '_'))
      await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(to))
    }
  } finally {
    zip.close()
  }
}

/**
 * Stores `files` files of `fileMb` MiB (random bytes) in `source`, exports it with its files, and
 * imports the zip into `target` (a fresh backend). Returns seconds and MB.
 */
export async function importBench({ source, target, cli, mutation, files, fileMb }) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-import-'))
  try {
    for (let i = 0; i < files; i++) {
      const url = await mutation(source, 'bench:uploadUrl', {})
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(fileMb << 20) })
      if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`)
    }
    const zipPath = join(dir, 'snapshot.zip')
    await cli(source, ['export', '--include-file-storage', '--path', zipPath])
    const zipMb = statSync(zipPath).size / (1 << 20)
    const out = join(dir, 'extracted')
    mkdirSync(out)
    let t = performance.now()
    await extract(zipPath, out)
    const rawSeconds = (performance.now() - t) / 1000
    rmSync(out, { recursive: true, force: true })
    const before = rss(target.child.pid)
    let peak = before
    const sampler = setInterval(() => (peak = Math.max(peak, rss(target.child.pid))), 20)
    t = performance.now()
    try {
      await cli(target, ['import', '--replace-all', '-y', zipPath])
    } finally {
      clearInterval(sampler)
    }
    const importSeconds = (performance.now() - t) / 1000
    return { zipMb, rawSeconds, importSeconds, rssBeforeMb: before, peakGrowthMb: peak - before }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
