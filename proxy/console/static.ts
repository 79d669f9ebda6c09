/**
 * `GET /console/assets/<version>/<file>`: the console's modules and
 * stylesheet from memory, brotli or gzip when the browser takes it, cached
 * for a year (the version in the path changes with every build). Anything
 * else under `/console/assets/` is a 404; nothing is read from disk here.
 */
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import type { ConsoleAssets } from './assets.js';

const assetPrefix = '/console/assets/';

function notFound(res: AnyResponse, text: string): void {
  res.writeHead(404, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text + '\n');
}

/** Serve the asset; false (nothing written) when the path is not under `/console/assets/`. */
export function serveAsset(assets: ConsoleAssets, req: AnyRequest, res: AnyResponse): boolean {
  const target = req.url ?? '/';
  if (!target.startsWith(assetPrefix)) return false;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'cache-control': 'no-store' });
    res.end();
    return true;
  }
  const path = target.split('?')[0]!;
  const rest = path.slice(assetPrefix.length);
  const slash = rest.indexOf('/');
  const file = slash > 0 && rest.slice(0, slash) === assets.version ? rest.slice(slash + 1) : '';
  const a = assets.files.get(file);
  if (!a) {
    notFound(res, 'no such console asset (the console may have been updated: reload the page)');
    return true;
  }
  const accept = String(req.headers['accept-encoding'] ?? '');
  const enc = /\bbr\b/.test(accept) ? 'br' : /\bgzip\b/.test(accept) ? 'gzip' : undefined;
  const body = enc === 'br' ? a.br : enc === 'gzip' ? a.gzip : a.body;
  const etag = `"${assets.version}-${enc ?? 'id'}"`;
  const headers: Record<string, string> = {
    'content-type': a.type,
    'cache-control': 'public, max-age=31536000, immutable',
    etag,
    vary: 'accept-encoding',
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'same-origin',
  };
  if (enc) headers['content-encoding'] = enc;
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  headers['content-length'] = String(body.length);
  res.writeHead(200, headers);
  if (method === 'HEAD') res.end();
  else res.end(body);
  return true;
}
