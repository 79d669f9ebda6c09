/**
 * A real browser for console tests: Debian's chromium driven by
 * playwright-core, headless, with a fresh profile each launch. The proxy's
 * certificate comes from kubegate's private CA; instead of turning
 * certificate checks off, the browser is told to accept exactly that
 * certificate's public key (--ignore-certificate-errors-spki-list), so
 * the page is a normal secure context with `__Host-` cookies.
 *
 * No chromium → the test fails loudly (never skips).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from './repo.js';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots and other browser artifacts go (gitignored). */
export const artifactsDir = join(repoRoot(), 'test-results', 'console');

/** base64 SHA-256 of the server certificate's SubjectPublicKeyInfo at `url`. */
export function spkiHash(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect(
      {
        host: u.hostname,
        port: Number(u.port || 443),
        rejectUnauthorized: false,
        servername: undefined,
      },
      () => {
        const cert = s.getPeerX509Certificate();
        s.end();
        if (!cert) return reject(new Error(`no certificate from ${url}`));
        const der = cert.publicKey.export({ type: 'spki', format: 'der' });
        resolve(createHash('sha256').update(der).digest('base64'));
      },
    );
    s.once('error', reject);
  });
}

export interface ChromiumSession {
  context: BrowserContext;
  page: Page;
  /** Files the page downloaded land here. */
  downloads: string;
  close(): Promise<void>;
}

/** Launch chromium with a fresh profile that trusts the front at `publicUrl`. */
export async function launchChromium(publicUrl: string): Promise<ChromiumSession> {
  if (!existsSync(chromiumPath))
    throw new Error(
      `chromium not found at ${chromiumPath}: install Debian's chromium (apt-get install chromium) — console tests need a real browser`,
    );
  const profile = mkdtempSync(join(tmpdir(), 'kg-chromium-'));
  const downloads = join(profile, 'downloads');
  mkdirSync(downloads);
  const spki = await spkiHash(publicUrl);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    acceptDownloads: true,
    downloadsPath: downloads,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    downloads,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot under test-results/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
