/**
 * Attack: exhaust a replica's memory with request bodies (issue #17, item 7).
 * Before the fix, HTTP/2 bodies without content-length were held whole in JS
 * memory with no per-identity bound and no idle timeout: one user's 200
 * streams, each sending 2 MiB and never finishing, took the proxy from
 * 100 MiB to 555 MiB RSS, and 630 MiB stayed after the streams closed.
 *
 * On the real stack: the same attack over node:http2. The proxy's RSS (from
 * /proc/PID/status) stays bounded — before, peak and after are printed —,
 * the attacker's streams end with clear Statuses, and another user's kubectl
 * keeps working meanwhile. A body that stops arriving is answered 408 with a
 * Status, on HTTP/2 and on HTTP/1.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';

const NS = 'attack';
const STREAMS = 200;
const PER_STREAM = 2 * 1024 * 1024;
const IDLE_S = 5;
const log = (m: string) => process.stderr.write(`# ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kb: number) => Math.round(kb / 1024);

let stack: Stack;
let ca: string;
let attackerToken: string;
let victimKubeconfig: string;

function tokenOf(kubeconfig: string): string {
  return /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;
}

/** VmRSS of a process, in KiB. */
function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

interface Answer {
  status: number;
  body: string;
  /** ms from the last body byte sent to the answer. */
  afterLastByte: number;
  /** How the stream ended without an answer (for a reader of a failure). */
  why?: string;
  /** RST_STREAM code the stream ended with (0: none, or NO_ERROR). */
  rst?: number;
}

/** One stream: a ConfigMap create whose body sends `size` bytes and never ends. */
function neverEnding(session: http2.ClientHttp2Session, size: number): Promise<Answer> {
  return new Promise((resolve) => {
    const req = session.request({
      ':method': 'POST',
      ':path': `/k8s/dev/api/v1/namespaces/${NS}/configmaps`,
      authorization: `Bearer ${attackerToken}`,
      'content-type': 'application/json',
    });
    let status = 0;
    let body = '';
    let lastByte = performance.now();
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (body += c.toString()));
    let settled = false;
    let why = '';
    const settle = () => {
      if (settled) return;
      settled = true;
      why += ` rst=${req.rstCode ?? '-'}`;
      resolve({
        status,
        body,
        afterLastByte: performance.now() - lastByte,
        why,
        rst: req.rstCode ?? 0,
      });
    };
    req.on('end', settle);
    req.on('close', settle);
    req.on('error', (e) => (why += ` error=${e.message}`));
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = () => {
      req.write('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"');
      const more = () => {
        while (sent < size && !req.destroyed && status === 0) {
          sent += piece.length;
          lastByte = performance.now();
          if (!req.write(piece)) return void req.once('drain', more);
        }
      };
      more();
    };
    pump();
  });
}

describe(
  'request-body exhaustion: bounded memory, clear errors, idle bodies time out',
  { timeout: 600_000 },
  () => {
    before(async () => {
      stack = await startStack({ log, proxyEnv: { KUBEGATE_BODY_IDLE_TIMEOUT: `${IDLE_S}s` } });
      await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
      await grant(stack, { users: ['mallory'], role: 'edit', clusters: ['dev'], namespaces: [NS] });
      await grant(stack, { users: ['vera'], role: 'view', clusters: ['dev'], namespaces: [NS] });
      const attacker = await stack.kubeconfig('mallory');
      attackerToken = tokenOf(attacker);
      ca = Buffer.from(
        /certificate-authority-data: (\S+)/.exec(readFileSync(attacker, 'utf8'))![1]!,
        'base64',
      ).toString();
      victimKubeconfig = await stack.kubeconfig('vera');
      // Both users' JIT accounts exist before the attack.
      await kubectlOk(['get', 'configmaps', '-n', NS], { kubeconfig: attacker });
      await kubectlOk(['get', 'configmaps', '-n', NS], { kubeconfig: victimKubeconfig });
    });
    after(async () => {
      if (stack) {
        // For a reader of a failure: what the proxy and the agent said about tunnels and errors.
        const pick = (out: string) =>
          out
            .split('\n')
            .filter((l) => /tunnel|"level":(40|50)/.test(l))
            .slice(-12)
            .join('\n');
        log(`proxy log (tunnel, warn, error):\n${pick(stack.proxy.output())}`);
        log(`agent log (tunnel, warn, error):\n${pick(stack.agents.get('dev')!.output())}`);
      }
      await stack?.stop();
    });

    test(`${STREAMS} never-ending 2 MiB HTTP/2 bodies from one user: RSS bounded, clear errors, others unaffected`, async () => {
      const pid = stack.proxy.child.pid!;
      await sleep(1000);
      const beforeKb = rssKb(pid);
      let peakKb = beforeKb;
      const sampler = setInterval(() => (peakKb = Math.max(peakKb, rssKb(pid))), 100);

      const session = http2.connect(stack.publicUrl, { ca });
      let sessionEnd = '';
      session.on('error', (e) => (sessionEnd += ` error=${e.message}`));
      session.on('goaway', (code) => (sessionEnd += ` goaway=${code}`));
      const answers = Promise.all(
        Array.from({ length: STREAMS }, () => neverEnding(session, PER_STREAM)),
      );
      // Meanwhile another user works as usual.
      const victim: { code: number | null; ms: number; err: string }[] = [];
      const victimDone = (async () => {
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          const r = await kubectl(['get', 'configmaps', '-n', NS, '-o', 'name'], {
            kubeconfig: victimKubeconfig,
          });
          victim.push({ code: r.code, ms: Math.round(performance.now() - t0), err: r.stderr });
          await sleep(1000);
        }
      })();
      const got = await answers;
      await victimDone;
      session.close();
      clearInterval(sampler);
      await sleep(5000);
      const afterKb = rssKb(pid);

      const byStatus = new Map<number, number>();
      for (const a of got) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
      log(
        `proxy RSS: before ${mib(beforeKb)} MiB, peak ${mib(peakKb)} MiB (+${mib(peakKb - beforeKb)}), after ${mib(afterKb)} MiB (+${mib(afterKb - beforeKb)})`,
      );
      log(`attacker answers by status: ${JSON.stringify(Object.fromEntries(byStatus))}`);
      log(
        `answer ms after the last body byte: max ${Math.round(Math.max(...got.map((a) => a.afterLastByte)))}`,
      );
      log(`victim kubectl: ${victim.map((v) => `${v.code}/${v.ms}ms`).join(', ')}`);
      log(`sample attacker Status: ${got.find((a) => a.status === 408)?.body ?? ''}`);
      for (const a of got.filter((x) => x.status === 0).slice(0, 5)) log(`unanswered:${a.why}`);

      // Held bodies are bounded (16 MiB per identity by default); the rest streams.
      assert.ok(
        peakKb - beforeKb < 160 * 1024,
        `peak RSS grew by ${mib(peakKb - beforeKb)} MiB for ${(STREAMS * PER_STREAM) / 2 ** 20} MiB sent`,
      );
      // After: freed memory is not always handed back to the system at once
      // (seen +20 to +110 MiB); before the fix it stayed at +530 MiB.
      assert.ok(
        afterKb - beforeKb < 160 * 1024,
        `RSS after the attack is ${mib(afterKb - beforeKb)} MiB above before`,
      );
      // Under this flood the front's HTTP/2 layer may refuse streams before
      // kubegate reads them (the session is over maxSessionMemory: RST_STREAM
      // ENHANCE_YOUR_CALM or REFUSED_STREAM), and a stream reset after its
      // answer may lose that answer on the wire; how many depends on the
      // runtime's nghttp2 (Node 24 refuses nearly all of them at the HTTP/2
      // layer). Neither ever became an allowed request. What must hold: no
      // stream is accepted, every answer is a Status, memory stays bounded,
      // the other user is unaffected. A single stream's clear 408 is proven
      // by the two tests below.
      const unanswered = got.filter((a) => a.status === 0);
      const rsts = new Map<number, number>();
      for (const a of unanswered) rsts.set(a.rst ?? 0, (rsts.get(a.rst ?? 0) ?? 0) + 1);
      log(
        `unanswered streams by RST_STREAM code: ${JSON.stringify(Object.fromEntries(rsts))} (${http2.constants.NGHTTP2_ENHANCE_YOUR_CALM}: ENHANCE_YOUR_CALM, ${http2.constants.NGHTTP2_REFUSED_STREAM}: REFUSED_STREAM, 0: NO_ERROR)`,
      );
      log(`the attacker's session: ${sessionEnd || 'not ended by the server'}`);
      for (const a of got) {
        if (a.status === 0) continue;
        assert.ok(a.status >= 400, `every attacker stream is refused (got ${a.status})`);
        const s = JSON.parse(a.body) as { kind: string; code: number; message: string };
        assert.equal(s.kind, 'Status');
        assert.equal(s.code, a.status);
      }
      for (const v of victim) assert.equal(v.code, 0, `the other user's kubectl works: ${v.err}`);
      assert.equal(stack.proxy.child.exitCode, null, 'the proxy is still running');
    });

    test('refused large bodies on one HTTP/2 session: each answered, the session stays usable', async () => {
      // Before: a refused request's body was left unread; each pinned up to
      // its stream window in the session's memory, and after eight 1–5 MB
      // refusals Node refused every new stream on the session
      // (ENHANCE_YOUR_CALM) — kubectl's connection was dead.
      const session = http2.connect(stack.publicUrl, { ca });
      session.on('error', () => undefined);
      const statuses: (number | string)[] = [];
      for (let i = 0; i < 24; i++) {
        const size = [1_000_000, 3_000_000, 2_500_000][i % 3]!;
        statuses.push(
          await new Promise<number | string>((resolve) => {
            const req = session.request(
              {
                ':method': 'POST',
                // default: mallory may not write there (403); i % 4 == 3 without a token (401)
                ':path': '/k8s/dev/api/v1/namespaces/default/configmaps',
                ...(i % 4 === 3 ? {} : { authorization: `Bearer ${attackerToken}` }),
                'content-type': 'application/json',
              },
              { endStream: false },
            );
            let status = 0;
            req.on('response', (h) => (status = Number(h[':status'])));
            req.resume();
            req.on('error', (e) => resolve(`error: ${e.message}`));
            req.on('close', () => resolve(status));
            req.end(Buffer.alloc(size, 0x61));
          }),
        );
      }
      const ok = await new Promise<number>((resolve) => {
        const req = session.request({
          ':path': `/k8s/dev/api/v1/namespaces/${NS}/configmaps`,
          authorization: `Bearer ${attackerToken}`,
        });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.resume();
        req.on('close', () => resolve(status));
        req.on('error', () => resolve(-1));
      });
      session.close();
      log(`refused large bodies on one session: ${statuses.join(' ')}; then a list: ${ok}`);
      for (const [i, st] of statuses.entries())
        assert.equal(st, i % 4 === 3 ? 401 : 403, `request ${i} is answered with its refusal`);
      assert.equal(ok, 200, 'the session still carries requests');
    });

    test('an idle HTTP/2 body: 408 Status, stream reset', async () => {
      const session = http2.connect(stack.publicUrl, { ca });
      session.on('error', () => undefined);
      const t0 = performance.now();
      const a = await new Promise<Answer & { rst: number }>((resolve) => {
        const req = session.request({
          ':method': 'POST',
          ':path': `/k8s/dev/api/v1/namespaces/${NS}/configmaps`,
          authorization: `Bearer ${attackerToken}`,
          'content-type': 'application/json',
        });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('error', () => undefined);
        req.on('close', () => resolve({ status, body, afterLastByte: 0, rst: req.rstCode ?? -1 }));
        req.write('{"apiVersion":"v1",');
        // never more, never ended
      });
      session.close();
      const ms = Math.round(performance.now() - t0);
      log(`idle h2 body: ${a.status} after ${ms} ms, RST code ${a.rst}: ${a.body}`);
      assert.equal(a.status, 408);
      const s = JSON.parse(a.body) as {
        kind: string;
        code: number;
        reason: string;
        message: string;
      };
      assert.equal(s.kind, 'Status');
      assert.equal(s.code, 408);
      assert.match(s.message, /sent nothing for 5 s/);
      assert.ok(ms >= IDLE_S * 1000 - 200, `not before the idle timeout (${ms} ms)`);
    });

    test('an idle HTTP/1.1 chunked body: 408 Status, connection closed', async () => {
      const u = new URL(stack.publicUrl);
      const a = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          {
            host: u.hostname,
            port: u.port,
            path: `/k8s/dev/api/v1/namespaces/${NS}/configmaps`,
            method: 'POST',
            ca,
            agent: false,
            headers: {
              authorization: `Bearer ${attackerToken}`,
              'content-type': 'application/json',
              'transfer-encoding': 'chunked',
            },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.write('{"apiVersion":"v1",');
      });
      log(`idle h1 body: ${a.status}: ${a.body}`);
      assert.equal(a.status, 408);
      assert.equal((JSON.parse(a.body) as { kind: string }).kind, 'Status');
    });
  },
);
