/**
 * "Terminal": a shell into a pod's container, from the browser. The pickers
 * offer only what the server says you may exec into (clusters and
 * namespaces from /api/v1/terminal/targets, running pods and their
 * containers from /api/v1/terminal/pods); the session is a WebSocket on
 * /api/v1/terminal speaking the Kubernetes channel protocol
 * v5.channel.k8s.io (stdin 0, stdout 1, stderr 2, the end Status 3, resize
 * 4) — the same exec kubectl makes, authorized, audited and recorded by the
 * proxy as kubectl's is. When the session ends the reason is shown (the
 * command's exit, or why kubegate ended it: access removed, token revoked).
 */
import { ApiError, get, query } from '../api.js';
import { field, h, replace } from '../dom.js';
import type { ViewContext } from '../view.js';
import { errorNotice, statusArea } from '../widgets.js';
import { loadXterm, type FitAddon, type Terminal } from '../xterm.js';

interface Target {
  name: string;
  namespaces: string[];
  allNamespaces: boolean;
  online: boolean;
}

interface Pod {
  name: string;
  containers: string[];
}

const channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;

function options(select: HTMLSelectElement, values: string[], empty: string): void {
  replace(
    select,
    values.length === 0
      ? h('option', { value: '' }, empty)
      : values.map((v) => h('option', { value: v }, v)),
  );
  select.disabled = values.length === 0;
}

/** What a channel-3 Status says: success, the command's exit code, or kubegate's reason. */
export function endMessage(status: {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}): string {
  if (status.status === 'Success') return 'the command exited (0)';
  const exit = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status.reason === 'NonZeroExitCode' && exit) return `the command exited (${exit})`;
  return status.message || 'the session ended';
}

export async function terminalView(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const cluster = h('select', { id: 'term-cluster', name: 'cluster' });
  const namespace = h('select', { id: 'term-namespace', name: 'namespace' });
  const namespaceFree = h('input', {
    id: 'term-namespace-name',
    name: 'namespace-name',
    placeholder: 'any namespace',
    'aria-label': 'Namespace name',
    autocomplete: 'off',
  });
  const pod = h('select', { id: 'term-pod', name: 'pod' });
  const container = h('select', { id: 'term-container', name: 'container' });
  const command = h('input', { id: 'term-command', name: 'command', value: 'sh' });
  const connect = h('button', { type: 'submit' }, 'Open terminal');
  const disconnect = h('button', { type: 'button', class: 'quiet', disabled: true }, 'Close');
  const state = h(
    'p',
    { id: 'term-state', role: 'status', 'data-state': 'idle' },
    'Not connected.',
  );
  const screen = h('div', { id: 'term-screen', class: 'terminal' });
  const recording = h('p', { id: 'term-recording' });

  let targets: Target[] = [];
  let pods: Pod[] = [];
  let socket: WebSocket | undefined;
  let term: Terminal | undefined;
  let fit: FitAddon | undefined;

  const chosenNamespace = () =>
    namespace.value === '*' ? namespaceFree.value.trim() : namespace.value;

  const loadContainers = () => {
    const p = pods.find((x) => x.name === pod.value);
    options(container, p?.containers ?? [], 'no containers');
  };
  // Each pick supersedes the answers still coming for earlier ones.
  let podsAsked = 0;
  let namespacesAsked = 0;
  const loadPods = async () => {
    const mine = ++podsAsked;
    pods = [];
    options(pod, [], 'loading…');
    options(container, [], '');
    const ns = chosenNamespace();
    if (!cluster.value || !ns) return options(pod, [], 'pick a namespace');
    let found: Pod[] = [];
    try {
      found = (
        await get<{ items: Pod[] }>(
          `/api/v1/terminal/pods${query({ cluster: cluster.value, namespace: ns })}`,
        )
      ).items;
      if (mine === podsAsked) status.clear();
    } catch (err) {
      if (mine === podsAsked) status.show(errorNotice(err));
    }
    if (mine !== podsAsked) return;
    pods = found;
    options(
      pod,
      pods.map((p) => p.name),
      'no running pod you may open a terminal in',
    );
    loadContainers();
  };
  const loadNamespaces = async () => {
    const mine = ++namespacesAsked;
    const t = targets.find((x) => x.name === cluster.value);
    let names = t?.namespaces ?? [];
    if (t?.allNamespaces) {
      options(namespace, [], 'loading…');
      try {
        names = (
          await get<{ items: string[] }>(`/api/v1/terminal/namespaces${query({ cluster: t.name })}`)
        ).items;
      } catch (err) {
        status.show(errorNotice(err));
      }
      if (mine !== namespacesAsked) return;
    }
    options(namespace, t?.allNamespaces ? [...names, '*'] : names, 'none');
    const star = namespace.querySelector('option[value="*"]');
    if (star) star.textContent = 'another namespace…';
    namespaceFree.hidden = namespace.value !== '*';
    await loadPods();
  };

  cluster.addEventListener('change', () => void loadNamespaces());
  namespace.addEventListener('change', () => {
    namespaceFree.hidden = namespace.value !== '*';
    void loadPods();
  });
  namespaceFree.addEventListener('change', () => void loadPods());
  pod.addEventListener('change', loadContainers);

  const setState = (s: 'idle' | 'connecting' | 'connected' | 'ended', text: string) => {
    state.dataset.state = s;
    replace(state, text);
    connect.disabled = s === 'connecting' || s === 'connected';
    disconnect.disabled = !(s === 'connecting' || s === 'connected');
  };

  const send = (ch: number, data: Uint8Array) => {
    if (socket?.readyState !== WebSocket.OPEN) return;
    const frame = new Uint8Array(data.length + 1);
    frame[0] = ch;
    frame.set(data, 1);
    socket.send(frame);
  };
  const sendSize = () => {
    if (term)
      send(
        channel.resize,
        new TextEncoder().encode(JSON.stringify({ Width: term.cols, Height: term.rows })),
      );
  };

  /** After the session: a link to its recording, for those who may read recordings. */
  const showRecording = async (
    target: { cluster: string; namespace: string; pod: string },
    since: Date,
  ) => {
    try {
      const { items } = await get<{ items: { id: string; startedAt: string }[] }>(
        `/api/v1/recordings${query({
          user: ctx.me.name,
          cluster: target.cluster,
          namespace: target.namespace,
          pod: target.pod,
          from: since.toISOString(),
          limit: '1',
        })}`,
      );
      const rec = items[0];
      if (rec)
        replace(
          recording,
          'Recorded: ',
          h(
            'a',
            { href: `/console/recordings/${encodeURIComponent(rec.id)}` },
            `recording ${rec.id}`,
          ),
        );
    } catch (err) {
      // Only auditors and admins read recordings; others are told it is recorded, not shown it.
      if (!(err instanceof ApiError && err.status === 403)) status.show(errorNotice(err));
    }
  };

  const open = async () => {
    const target = {
      cluster: cluster.value,
      namespace: chosenNamespace(),
      pod: pod.value,
      container: container.value,
    };
    const argv = command.value.trim().split(/\s+/).filter(Boolean);
    if (!target.cluster || !target.namespace || !target.pod || !target.container) {
      status.show(errorNotice(new Error('Pick a cluster, namespace, pod and container first.')));
      return;
    }
    status.clear();
    replace(recording);
    setState('connecting', `Connecting to ${target.pod}/${target.container}…`);
    let x;
    try {
      x = await loadXterm();
    } catch (err) {
      setState('ended', 'The terminal could not be loaded.');
      status.show(errorNotice(err));
      return;
    }
    term?.dispose();
    term = new x.Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
    fit = new x.FitAddon();
    term.loadAddon(fit);
    replace(screen);
    term.open(screen);
    fit.fit();
    const q = new URLSearchParams(target);
    for (const a of argv.length ? argv : ['sh']) q.append('command', a);
    const url = new URL(`/api/v1/terminal?${q.toString()}`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url, ['v5.channel.k8s.io']);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    const since = new Date(Date.now() - 5000);
    let ended = '';
    let opened = false;
    const decoder = new TextDecoder();
    ws.addEventListener('open', () => {
      opened = true;
      setState('connected', `Connected to ${target.pod}/${target.container} on ${target.cluster}.`);
      sendSize();
      term?.focus();
    });
    ws.addEventListener('message', (ev: MessageEvent<ArrayBuffer | string>) => {
      if (typeof ev.data === 'string') return;
      const bytes = new Uint8Array(ev.data);
      if (bytes.length === 0) return;
      const body = bytes.subarray(1);
      if (bytes[0] === channel.stdout || bytes[0] === channel.stderr) term?.write(body);
      else if (bytes[0] === channel.error) {
        try {
          ended = endMessage(JSON.parse(decoder.decode(body)) as Parameters<typeof endMessage>[0]);
        } catch {
          ended = decoder.decode(body).slice(0, 500);
        }
      }
    });
    ws.addEventListener('close', () => {
      if (socket !== ws) return;
      socket = undefined;
      setState(
        'ended',
        opened
          ? `Ended: ${ended || 'the connection closed'}.`
          : 'Refused: kubegate did not open this terminal (you may not exec into this container, or it is gone).',
      );
      if (opened) void showRecording(target, since);
    });
    term.onData((d) => send(channel.stdin, new TextEncoder().encode(d)));
    term.onBinary((d) =>
      send(
        channel.stdin,
        Uint8Array.from(d, (c) => c.charCodeAt(0)),
      ),
    );
    term.onResize(() => sendSize());
  };

  const onWindowResize = () => {
    if (!screen.isConnected) {
      window.removeEventListener('resize', onWindowResize);
      socket?.close();
      return;
    }
    fit?.fit();
  };
  window.addEventListener('resize', onWindowResize);
  // Leaving the view closes the session.
  const watch = setInterval(() => {
    if (screen.isConnected) return;
    clearInterval(watch);
    window.removeEventListener('resize', onWindowResize);
    socket?.close();
    term?.dispose();
  }, 1000);

  disconnect.addEventListener('click', () => socket?.close());
  const form = h(
    'form',
    { class: 'terminal-pickers' },
    field('Cluster', cluster),
    h('div', {}, field('Namespace', namespace), namespaceFree),
    field('Pod', pod),
    field('Container', container),
    field('Command', command, 'Run as given: words become arguments, no shell parses them.'),
    h('div', { class: 'actions' }, connect, disconnect),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void open();
  });
  namespaceFree.hidden = true;
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Open a shell in a container you may exec into. It is the same exec as kubectl’s: authorized, audited and recorded, and it ends when your access does.',
    ),
    form,
    status.el,
    state,
    screen,
    recording,
  );
  try {
    targets = (await get<{ items: Target[] }>('/api/v1/terminal/targets')).items;
  } catch (err) {
    status.show(errorNotice(err));
  }
  options(
    cluster,
    targets.map((t) => t.name),
    'no cluster where you may open a terminal',
  );
  if (targets.length === 0)
    status.show(
      h(
        'div',
        { class: 'empty', role: 'status' },
        'You may not open a terminal (exec) on any cluster.',
      ),
    );
  await loadNamespaces();
}
