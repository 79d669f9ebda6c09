/**
 * Headers that describe one connection, not the message: they are never
 * copied from one connection to the next, in either direction, by the proxy
 * or the agent. RFC 9110 §7.6.1 (Connection and the fields it names,
 * Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade), Trailer,
 * the proxy authentication pair (§11.7: they belong to the next hop only),
 * HTTP2-Settings (RFC 7540 §3.2.1: only for the connection being upgraded)
 * and Host (the next hop's authority is ours to set). Node refuses to send
 * the connection-specific ones (all but Trailer, Host and the proxy
 * authentication pair) on an HTTP/2 stream: relaying one would fail the
 * response, not just leak a header.
 */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
]);
