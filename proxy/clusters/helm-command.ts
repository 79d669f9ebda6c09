/**
 * The Helm alternative to `kubectl apply -f <bootstrap YAML>`: the agent
 * chart (helm/kubegate-agent) renders the same objects from these values.
 * The proxy CA goes in as a file (`--set-file`), so the command stays one
 * line that shells do not mangle; every value is shell-quoted.
 */
export interface HelmInput {
  cluster: string;
  tunnelAddress: string;
  token: string;
  /** The file name the console offers the proxy CA under. */
  caFile: string;
}

/** POSIX shell single-quoting: safe for any value. */
function sh(v: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

export function agentHelmCommand(i: HelmInput): string {
  return [
    'helm install kubegate-agent helm/kubegate-agent',
    '-n kubegate-system --create-namespace',
    `--set cluster=${sh(i.cluster)}`,
    `--set tunnelAddress=${sh(i.tunnelAddress)}`,
    `--set bootstrap.token=${sh(i.token)}`,
    `--set-file bootstrap.proxyCa=${sh(i.caFile)}`,
  ].join(' ');
}
