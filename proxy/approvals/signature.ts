/**
 * Webhook signatures, so a receiver can tell our notifications from forged
 * ones and refuse replays: HMAC-SHA256 over `v1:<timestamp>:<body>` with the
 * webhook's secret, sent as
 *
 *   X-Kubegate-Timestamp: <unix seconds>
 *   X-Kubegate-Signature: v1=<hex>
 *
 * The receiver recomputes the HMAC over the exact bytes it received and
 * rejects a timestamp far from its clock (docs/approvals.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const hdrTimestamp = 'x-kubegate-timestamp';
export const hdrSignature = 'x-kubegate-signature';

export function sign(secret: string, timestamp: number, body: string): string {
  return 'v1=' + createHmac('sha256', secret).update(`v1:${timestamp}:${body}`).digest('hex');
}

/** Whether `signature` is ours for this body and the timestamp is within `toleranceSec` of `now`. */
export function verify(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  toleranceSec = 300,
  now = Date.now(),
): boolean {
  const ts = Number(timestamp);
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now / 1000 - ts) > toleranceSec) return false;
  const want = Buffer.from(sign(secret, ts, body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}
