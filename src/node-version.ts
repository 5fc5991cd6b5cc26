/** @module The Node.js version check dist/backend.js makes before it loads anything else. */

/** The oldest Node.js major version the backend runs on (isolated-vm 7 and better-sqlite3 13 ship builds for it). */
export const MIN_NODE_MAJOR = 24

/** What to tell someone running the backend on an older Node.js, or null if `version` will do. */
export function nodeVersionProblem(version: string, execPath: string): string | null {
  const major = Number(version.split('.')[0])
  if (major >= MIN_NODE_MAJOR) return null
  return [
    `Concave needs Node.js ${MIN_NODE_MAJOR} or newer, but this is Node.js ${version} (${execPath}).`,
    `\`npm install\` put Node.js ${MIN_NODE_MAJOR} in node_modules; run the backend with it:`,
    '  npm start                                   (builds, then starts the backend)',
    '  npx node dist/backend.js [options]          (or node_modules/.bin/node dist/backend.js [options])',
    'or build the single executable, which needs no Node.js: npm run package, then dist/concave-backend [options].',
    '',
  ].join('\n')
}
