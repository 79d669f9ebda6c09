/**
 * A session recording as the recordings API lists it (JSON): the proxy
 * builds it (proxy/recording/catalog.ts), the console reads it. Types only;
 * see wire/namespaces.ts for why these live here.
 */

export interface RecordingView {
  id: string;
  /** The audit event of the request that opened the session. */
  auditId: string;
  kind: 'exec' | 'attach' | 'portforward';
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  user: { name: string; kind: string; groups: string[] };
  mode: string;
  policy: string;
  stdinRecorded: boolean;
  replica: string;
  status: 'recording' | 'complete' | 'incomplete' | 'unrecorded';
  reason: string;
  bytesIn: number;
  bytesOut: number;
  /** ISO 8601, UTC. */
  startedAt: string;
  endedAt: string | null;
}
