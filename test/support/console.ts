/**
 * What a person does in the console, for browser tests: sign in through the
 * dev IdP's own login and consent pages, move between views with the
 * navigation, and save what a button downloads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { ChromiumSession } from './chromium.js';
import { demoPassword } from './idp.js';

export async function signIn(page: Page, publicUrl: string, email: string): Promise<void> {
  await page.goto(`${publicUrl}/`);
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.locator('input[name=login]').fill(email);
  await page.locator('input[name=password]').fill(demoPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The provider asks for consent on the first sign-in of each browser.
  const home = page.getByRole('heading', { level: 1, name: 'My clusters' });
  const consent = page.getByRole('button', { name: 'Continue' });
  await consent.or(home).first().waitFor({ timeout: 30_000 });
  if (await consent.isVisible()) await consent.click();
  await home.waitFor({ timeout: 30_000 });
}

/** Click something that makes the page download a file; returns its saved path, name and text. */
export async function downloadBy(
  s: ChromiumSession,
  click: () => Promise<void>,
): Promise<{ path: string; name: string; text: string }> {
  const [d] = await Promise.all([s.page.waitForEvent('download'), click()]);
  const path = join(s.downloads, d.suggestedFilename());
  await d.saveAs(path);
  return { path, name: d.suggestedFilename(), text: readFileSync(path, 'utf8') };
}

/** Follow a link in the console's navigation and wait for the view's heading. */
export async function goTo(page: Page, link: string): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Console' })
    .getByRole('link', { name: link, exact: true })
    .click();
  await page.getByRole('heading', { level: 1, name: link, exact: true }).waitFor();
  // Views load their module and data after the heading: wait until nothing says "Loading…".
  // (A locator, not waitForFunction: a string predicate is eval'd in the page, which the CSP refuses.)
  await page.locator('main').getByText('Loading…').first().waitFor({ state: 'detached' });
}

/**
 * Accessibility basics of what the page shows now: every form control,
 * button and link has an accessible name. Returns the ones that do not.
 */
export async function unnamedControls(page: Page): Promise<string[]> {
  // Browser code as a string: the test program itself has no DOM types.
  return (await page.evaluate(`[...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a')]
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') ||
      el.getAttribute('aria-labelledby') || el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 80))`)) as string[];
}
