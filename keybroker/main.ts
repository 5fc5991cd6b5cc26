import { hideBin } from 'yargs/helpers'
import { main } from './cli.ts'

main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
