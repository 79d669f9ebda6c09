/**
 * A real S3-compatible object server for tests: versitygw (test/s3/bin/kg-s3,
 * built from its Go module by test/s3/build.sh, `make deps`) with its posix
 * backend on a temp directory — objects are files under <dir>/<bucket>/.
 * `stop` and `start` take it away and bring it back on the same port, with
 * its data (an outage as the proxy sees it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './ports.js';
import { repoRoot } from './repo.js';

export interface S3Server {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The directory holding the bucket's objects as files. */
  dataDir: string;
  /** The proxy's settings for this server (KUBEGATE_RECORDING_*). */
  env: NodeJS.ProcessEnv;
  /** A client as the tests use it (reading raw objects). */
  client: S3Client;
  /** What the server printed (to check it saw requests). */
  output(): string;
  /** Stop the server (data kept); `start` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop it for good and delete its data. */
  close(): Promise<void>;
}

export function s3Binary(): string {
  const bin = join(repoRoot(), 'test', 's3', 'bin', 'kg-s3');
  if (!existsSync(bin))
    throw new Error(
      `the test S3 server ${bin} is missing: run \`make deps\` (or test/s3/build.sh) first; it builds versitygw from its Go module in a few minutes`,
    );
  return bin;
}

export async function startS3(opts: { bucket?: string } = {}): Promise<S3Server> {
  const root = mkdtempSync(join(tmpdir(), 'kg-s3-'));
  const dataDir = join(root, 'data');
  mkdirSync(dataDir);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = `kgtest${randomBytes(4).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const bucket = opts.bucket ?? 'kg-recordings';
  let child: ChildProcess | undefined;
  let out = '';
  const start = async () => {
    const c = spawn(s3Binary(), ['--port', `127.0.0.1:${port}`, 'posix', dataDir], {
      env: {
        PATH: process.env.PATH,
        ROOT_ACCESS_KEY_ID: accessKeyId,
        ROOT_SECRET_ACCESS_KEY: secretAccessKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    const keep = (b: Buffer) => {
      out += b.toString();
      if (out.length > 1_000_000) out = out.slice(-500_000);
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`kg-s3 exited with ${c.exitCode}:\n${out}`);
      // Any HTTP answer (403 to an unsigned request) means it serves.
      const up = await fetch(`${endpoint}/`).then(
        () => true,
        () => false,
      );
      if (up) return;
      if (Date.now() > deadline) throw new Error(`kg-s3 did not answer within 20 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir,
    client,
    env: {
      KUBEGATE_RECORDING_STORAGE: 's3',
      KUBEGATE_RECORDING_S3_ENDPOINT: endpoint,
      KUBEGATE_RECORDING_S3_BUCKET: bucket,
      KUBEGATE_RECORDING_S3_REGION: 'us-east-1',
      KUBEGATE_RECORDING_S3_ACCESS_KEY_ID: accessKeyId,
      KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY: secretAccessKey,
      KUBEGATE_RECORDING_S3_FORCE_PATH_STYLE: 'true',
    },
    output: () => out,
    stop,
    start,
    async close() {
      client.destroy();
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
