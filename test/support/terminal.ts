/**
 * The console terminal's WebSocket (/api/v1/terminal) from a test, without a
 * browser: a raw upgrade request to see exactly what is answered (status
 * and body of a refusal, or 101), and a session over undici's WebSocket
 * speaking v5.channel.k8s.io (stdin on channel 0, output on 1 and 2, the
 * end Status on 3), with the headers a browser — or a forging page — sends.
 */
import * as https from 'node:https';
import { randomBytes } from 'node:crypto';
import { Agent, WebSocket } from 'undici';
import { until } from './http.js';

export interface UpgradeAnswer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** GET `path` with Upgrade: websocket and `headers`; the answer (101 with no body when switched). */
export function upgradeRequest(
  publicUrl: string,
  ca: string,
  path: string,
  headers: Record<string, string>,
): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    // The path as given (a URL string would have its dot segments resolved).
    const u = new URL(publicUrl);
    const req = https.request({
      host: u.hostname,
      port: Number(u.port || 443),
      path,
      ca,
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-protocol': 'v5.channel.k8s.io',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface TerminalSession {
  /** Everything the container printed so far (channels 1 and 2). */
  output(): string;
  /** The end Status (channel 3), once sent. */
  status(): Record<string, unknown> | undefined;
  type(text: string): void;
  resize(cols: number, rows: number): void;
  /** Resolves when the socket is closed (with its close code); rejects if still open 15 s after opening. */
  closed: Promise<number>;
  close(): void;
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
}

/** Open a terminal session as a browser on `publicUrl` with `cookie` would. */
export async function openTerminal(
  publicUrl: string,
  ca: string,
  cookie: string,
  query: string,
  headers: Record<string, string> = {},
): Promise<TerminalSession> {
  const url = new URL(`/api/v1/terminal?${query}`, publicUrl);
  url.protocol = 'wss:';
  const dispatcher = new Agent({ connect: { ca } });
  const ws = new WebSocket(url, {
    protocols: ['v5.channel.k8s.io'],
    dispatcher,
    headers: { origin: new URL(publicUrl).origin, cookie, ...headers },
  });
  ws.binaryType = 'arraybuffer';
  let out = '';
  let end: Record<string, unknown> | undefined;
  const decoder = new TextDecoder();
  ws.addEventListener('message', (ev) => {
    const bytes = new Uint8Array(ev.data as ArrayBuffer);
    if (bytes[0] === 1 || bytes[0] === 2) out += decoder.decode(bytes.subarray(1));
    else if (bytes[0] === 3)
      end = JSON.parse(decoder.decode(bytes.subarray(1))) as Record<string, unknown>;
  });
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<number>((resolve, reject) => {
    ws.addEventListener('close', (ev) => {
      clearTimeout(timer);
      void dispatcher.close();
      resolve(ev.code);
    });
    // A session that should have ended but did not fails the test, not hangs it.
    timer = setTimeout(() => {
      ws.close();
      reject(
        new Error(
          `the terminal did not close within 15 s; output: ${JSON.stringify(out.slice(-300))}`,
        ),
      );
    }, 15_000);
  });
  closed.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('the terminal WebSocket did not open')));
  });
  const send = (ch: number, data: Uint8Array) => {
    const frame = new Uint8Array(data.length + 1);
    frame[0] = ch;
    frame.set(data, 1);
    ws.send(frame);
  };
  return {
    output: () => out,
    status: () => end,
    type: (text) => send(0, new TextEncoder().encode(text)),
    resize: (cols, rows) =>
      send(4, new TextEncoder().encode(JSON.stringify({ Width: cols, Height: rows }))),
    closed,
    close: () => ws.close(),
    waitFor: async (text, ms = 15_000) => {
      await until(
        async () => (typeof text === 'string' ? out.includes(text) : text.test(out)),
        ms,
        `terminal output ${String(text)}; got ${JSON.stringify(out.slice(-300))}`,
      );
    },
  };
}
