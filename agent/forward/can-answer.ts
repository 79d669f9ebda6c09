import type * as http2 from 'node:http2';

/**
 * Whether a tunnel stream can still take an answer. respond() throws on a
 * stream that is closed (a clean close can precede destroy while unread data
 * remains) as well as on a destroyed one, and the callers answer from event
 * listeners and callbacks, where a throw would end the agent.
 */
export function canAnswer(stream: http2.ServerHttp2Stream): boolean {
  return !stream.destroyed && !stream.closed;
}
