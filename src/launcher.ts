/**
 * @module dist/backend.js: checks the Node.js version, then loads the backend (dist/backend-main.js,
 * built from main.ts). The check comes first and alone: the backend's native addons fail to load
 * on an older Node.js with an error that doesn't say what to do, and its static imports all load
 * before any of its code runs. Built for old Node.js versions, so this file itself runs on them.
 */
import { nodeVersionProblem } from './node-version.ts'

const problem = nodeVersionProblem(process.versions.node, process.execPath)
if (problem === null) {
  // A variable keeps the bundler from pulling the backend into this file.
  const backend = './backend-main.js'
  await import(backend)
} else {
  process.stderr.write(problem)
  process.exitCode = 1
}
