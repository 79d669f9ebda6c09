/**
 * One pino root logger per process. Redaction of credentials is on from the
 * first line: authorization headers, cookies, tokens and impersonation headers
 * never reach a log sink (docs/security.md, "Secrets in logs").
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths pino censors wherever they appear in a log object. */
export const redactPaths = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'bootstrapToken',
  '*.bootstrapToken',
  'masterKey',
  '*.masterKey',
  'key',
  '*.key',
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["impersonate-user"]',
  'headers["impersonate-group"]',
  'headers["impersonate-uid"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

export interface LogOptions {
  name: string;
  level?: string;
  /** Destination file descriptor or stream; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** Create the process's root logger. Call once, in main. */
export function createLogger(opts: LogOptions): Logger {
  const options: LoggerOptions = {
    name: opts.name,
    level: opts.level ?? process.env.KUBEGATE_LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
