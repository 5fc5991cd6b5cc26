// Point-in-time restore of N documents (`BENCH_ONLY=restore`), in place and into a new data
// folder, beside writing the same documents through `npx convex import` in the same run.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Imports `count` documents into a table, notes the time, replaces all of them with changed ones
 * (a second import), then restores the table to the noted time, in place, then into a new data
 * folder (the whole deployment copied, that table as it was). Returns seconds for each.
 */
export async function restoreBench({ backend, importCli, count }) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-restore-'))
  try {
    const file = (tag) => {
      const path = join(dir, `${tag}.jsonl`)
      writeFileSync(path, Array.from({ length: count }, (_, i) => JSON.stringify({ n: i, tag, body: `document ${i} of the ${tag} import` })).join('\n') + '\n')
      return path
    }
    const first = file('first')
    const second = file('second')
    let t = performance.now()
    importCli(['import', '--table', 'restore_docs', '-y', first])
    const importSeconds = (performance.now() - t) / 1000
    const at = Date.now()
    while (Date.now() === at) await new Promise((r) => setImmediate(r))
    t = performance.now()
    importCli(['import', '--table', 'restore_docs', '--replace', '-y', second])
    const replaceSeconds = (performance.now() - t) / 1000
    t = performance.now()
    const response = await fetch(`${backend.url}/api/restore`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: at, tables: ['restore_docs'] }) })
    const restoreSeconds = (performance.now() - t) / 1000
    const result = await response.json()
    if (response.status !== 200) throw new Error(`restore failed: ${JSON.stringify(result)}`)
    t = performance.now()
    const into = await fetch(`${backend.url}/api/restore`, { method: 'POST', headers: { authorization: `Convex ${backend.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: at, tables: ['restore_docs'], into: join(dir, 'restored') }) })
    const intoSeconds = (performance.now() - t) / 1000
    const intoResult = await into.json()
    if (into.status !== 200) throw new Error(`restore into a new folder failed: ${JSON.stringify(intoResult)}`)
    return { importSeconds, replaceSeconds, restoreSeconds, documents: result.documents, intoSeconds, intoDocuments: intoResult.documents }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
