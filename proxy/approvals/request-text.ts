/**
 * A gated request the approver cannot be shown as a diff — exec, attach,
 * port-forward, proxy and other subresources that are not objects — shown
 * as exactly what will be sent: its method and path, and its query
 * parameters in the order sent, decoded the way the apiserver decodes them
 * (Go's `url.ParseQuery`), with exec's and attach's `command` as argv.
 * Nothing is sent to the cluster to make it.
 */
import type { RequestInfo } from '../authz/request-info.js';

export interface QueryPair {
  name: string;
  value: string;
}

function unhex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; undefined when malformed. */
function queryUnescape(s: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) bytes.push(0x20);
    else if (c === 0x25) {
      const hi = unhex(s.charCodeAt(i + 1));
      const lo = unhex(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      bytes.push(hi * 16 + lo);
      i += 2;
    } else if (c > 0x7f) {
      // Raw non-ASCII never reaches here (the route stage refuses it); keep it as UTF-8.
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The query as the apiserver reads it (Go `url.ParseQuery`): pairs in the
 * order sent, duplicates kept; a pair with a `;` or a malformed escape is
 * dropped by Go, and is listed in `dropped` so the approver sees it too.
 */
export function parseQueryAsGo(rawQuery: string): { pairs: QueryPair[]; dropped: string[] } {
  const pairs: QueryPair[] = [];
  const dropped: string[] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) {
      dropped.push(part);
      continue;
    }
    const eq = part.indexOf('=');
    const name = queryUnescape(eq < 0 ? part : part.slice(0, eq));
    const value = queryUnescape(eq < 0 ? '' : part.slice(eq + 1));
    if (name === undefined || value === undefined) {
      dropped.push(part);
      continue;
    }
    pairs.push({ name, value });
  }
  return { pairs, dropped };
}

/** Subresources whose requests are objects the apiserver can dry-run and diff. */
const objectSubresources = new Set(['', 'status', 'scale']);

/** Whether the gate may preview this request by a GET and a dry run. */
export function hasObjectPreview(info: RequestInfo): boolean {
  return (
    info.isResourceRequest && info.verb !== 'proxy' && objectSubresources.has(info.subresource)
  );
}

/**
 * The request as text for the approver: what it targets, the argv of an
 * exec (or attach) one element per line in order, and every query
 * parameter in the order sent.
 */
export function requestText(
  info: RequestInfo,
  method: string,
  kubePath: string,
  rawQuery: string,
  bodyBytes: number,
): string {
  const { pairs, dropped } = parseQueryAsGo(rawQuery);
  const target = `${info.resource}${info.subresource ? `/${info.subresource}` : ''}${info.name ? ` "${info.name}"` : ''}${info.namespace ? ` in namespace ${info.namespace}` : ''}`;
  const lines = [
    `${info.verb} ${target}`,
    `(no dry run for this request: it is shown exactly as it will be sent)`,
    `request: ${method} ${kubePath}${rawQuery ? `?${rawQuery}` : ''}`,
  ];
  if (['exec', 'attach'].includes(info.subresource)) {
    const container = pairs.find((p) => p.name === 'container');
    lines.push(`container: ${container ? JSON.stringify(container.value) : '(the default one)'}`);
    const argv = pairs.filter((p) => p.name === 'command').map((p) => p.value);
    if (info.subresource === 'exec') {
      lines.push(`command (argv, in the order it runs; ${argv.length} elements):`);
      argv.forEach((a, i) => lines.push(`  [${i}] ${JSON.stringify(a)}`));
    }
    // The apiserver reads the first value of a flag, as Go's strconv.ParseBool.
    const first = (n: string) => pairs.find((p) => p.name === n)?.value ?? '';
    const truthy = ['1', 't', 'T', 'true', 'TRUE', 'True'];
    if (truthy.includes(first('stdin')))
      lines.push('stdin: attached (what is typed into it is not part of this approval)');
    if (truthy.includes(first('tty'))) lines.push('tty: a terminal is allocated');
  }
  lines.push(`query parameters, in the order sent (${pairs.length}):`);
  for (const p of pairs) lines.push(`  ${JSON.stringify(p.name)} = ${JSON.stringify(p.value)}`);
  for (const d of dropped)
    lines.push(`  (ignored by the apiserver, malformed: ${JSON.stringify(d)})`);
  if (bodyBytes > 0) lines.push(`body: ${bodyBytes} bytes`);
  return lines.join('\n') + '\n';
}
