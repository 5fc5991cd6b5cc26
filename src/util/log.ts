/** @module Logger: one JSON object per line on stdout (level, time, message, fields). */

export type Level = 'debug' | 'info' | 'warn' | 'error'

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

export function createLogger(format: 'json' | 'pretty' = 'json', write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const emit = (level: Level, message: string, fields?: Record<string, unknown>) => {
    const time = new Date().toISOString()
    if (format === 'pretty') {
      const extra = fields === undefined ? '' : ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}`
      write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${extra}\n`)
    } else {
      write(`${JSON.stringify({ level, time, message, ...fields })}\n`)
    }
  }
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}
