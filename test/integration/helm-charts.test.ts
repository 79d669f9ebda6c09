/**
 * Both Helm charts with the real helm binary: lint and template with the
 * minimal and the full values, invariants every rendered workload must keep
 * (non-root, read-only root filesystem, no secret in plain env), and values
 * the charts must refuse with a message that names the value and the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { proxyDefaults, proxySchema } from '../../proxy/config.js';
import { chartPath, helm, helmTemplate, renderObjects, type K8sObject } from '../support/helm.js';
import { repoRoot } from '../support/repo.js';

type Chart = 'kubegate' | 'kubegate-agent';
const charts: Chart[] = ['kubegate', 'kubegate-agent'];
const variants = ['minimal-values.yaml', 'full-values.yaml'];

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
}

/** The pod spec of a workload (Deployment, Job) or a Pod; undefined for other kinds. */
function podSpecOf(o: K8sObject): PodSpec | undefined {
  if (o.kind === 'Pod') return o.spec as PodSpec;
  const spec = o.spec as { template?: { spec?: PodSpec } } | undefined;
  return spec?.template?.spec;
}

for (const chart of charts) {
  for (const v of variants) {
    test(`${chart}: helm lint with ci/${v}`, async () => {
      const r = await helm([
        'lint',
        '--strict',
        chartPath(chart),
        '-f',
        join(chartPath(chart), 'ci', v),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    test(`${chart}: helm template with ci/${v}: every pod is non-root, read-only, no secret in plain env`, async () => {
      const { objects } = await renderObjects(chart, { ciValues: [v] });
      const pods = objects.map(podSpecOf).filter((p): p is PodSpec => p !== undefined);
      assert.ok(pods.length >= 2, 'a workload and a chart test pod at least');
      for (const pod of pods) {
        assert.equal(pod.securityContext?.runAsNonRoot, true);
        assert.notEqual(pod.securityContext?.runAsUser, 0);
        for (const c of pod.containers) {
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, c.name);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], c.name);
          for (const e of c.env ?? []) {
            if (/DATABASE_URL|MASTER_KEY|SECRET|TOKEN$/.test(e.name))
              assert.equal(e.value, undefined, `${e.name} comes from a Secret, never a literal`);
          }
        }
      }
    });
  }
}

test('kubegate: several replicas spread over nodes, a PDB, probes, and a migration hook', async () => {
  const { objects } = await renderObjects('kubegate', { ciValues: ['minimal-values.yaml'] });
  const byKind = (k: string) => objects.filter((o) => o.kind === k);
  const dep = byKind('Deployment')[0]!;
  const spec = dep.spec as {
    replicas: number;
    template: {
      spec: { affinity: { podAntiAffinity: unknown }; containers: Record<string, unknown>[] };
    };
  };
  assert.ok(spec.replicas >= 2);
  assert.ok(spec.template.spec.affinity.podAntiAffinity);
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
    assert.ok(spec.template.spec.containers[0]![probe], probe);
  assert.equal(byKind('PodDisruptionBudget').length, 1);
  assert.deepEqual(
    byKind('Service')
      .map((s) => s.metadata.name)
      .sort(),
    ['kubegate', 'kubegate-enroll', 'kubegate-metrics', 'kubegate-tunnel'],
  );
  const job = byKind('Job')[0]!;
  assert.equal(
    (job.metadata.annotations as Record<string, string>)['helm.sh/hook'],
    'pre-install,pre-upgrade',
  );
  assert.deepEqual(
    (job.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec
      .containers[0]!.args,
    ['migrate'],
  );
  // The Secret the hook Job reads must exist before it: a hook with a lower weight.
  const secret = byKind('Secret')[0]!;
  const ann = secret.metadata.annotations as Record<string, string>;
  assert.ok(Number(ann['helm.sh/hook-weight']) < 0);
  assert.equal(byKind('HorizontalPodAutoscaler').length, 0, 'autoscaling is opt-in');
  assert.equal(byKind('Ingress').length, 0, 'the Ingress is opt-in');
  assert.equal(byKind('ServiceMonitor').length, 0, 'the ServiceMonitor is opt-in');
});

test('kubegate: full values render the optional objects', async () => {
  const { objects } = await renderObjects('kubegate', { ciValues: ['full-values.yaml'] });
  const kinds = new Set(objects.map((o) => o.kind));
  for (const k of ['HorizontalPodAutoscaler', 'Ingress', 'ServiceMonitor', 'NetworkPolicy'])
    assert.ok(kinds.has(k), k);
  const dep = objects.find((o) => o.kind === 'Deployment')!;
  assert.equal((dep.spec as { replicas?: number }).replicas, undefined, 'the HPA owns replicas');
});

test('kubegate: every env var the chart sets is a setting the proxy reads', async () => {
  const known = new Set<string>(Object.values(proxySchema).map((s) => s.env));
  const { objects } = await renderObjects('kubegate', { ciValues: ['full-values.yaml'] });
  const dep = objects.find((o) => o.kind === 'Deployment')!;
  const env = podSpecOf(dep)!.containers[0]!.env!.map((e) => e.name);
  // NODE_OPTIONS: from extraEnv in full-values.yaml; POD_IP: the downward-API
  // value KUBEGATE_PEER_ADDRESS is built from.
  const extra = new Set(['NODE_OPTIONS', 'POD_IP']);
  for (const name of env) {
    if (extra.has(name)) continue;
    assert.ok(known.has(name), `${name} is not in proxySchema (proxy/config.ts)`);
  }
  // And the ones the proxy requires are always set.
  for (const s of Object.values(proxySchema)) {
    if ('required' in s && s.required) assert.ok(env.includes(s.env), `${s.env} is set`);
  }
});

type EnvVar = NonNullable<Container['env']>[number];
interface NetPolRule {
  ports: { port: number; endPort?: number }[];
  from?: unknown[];
  to?: unknown[];
}

/** The proxy's env, its ports, the NetworkPolicy and Services, rendered with these values. */
async function proxyRender(values: unknown[], ci = 'minimal-values.yaml') {
  const { objects } = await renderObjects('kubegate', { ciValues: [ci], values });
  const dep = objects.find((o) => o.kind === 'Deployment')!;
  const c = podSpecOf(dep)!.containers[0]! as Container & {
    ports: { name: string; containerPort: number }[];
  };
  const env = c.env!;
  const value = (n: string) => env.find((e: EnvVar) => e.name === n)?.value;
  const np = objects.find((o) => o.kind === 'NetworkPolicy')?.spec as
    { ingress: NetPolRule[]; egress?: NetPolRule[]; podSelector: unknown } | undefined;
  const services = objects.filter((o) => o.kind === 'Service');
  return { env, value, ports: c.ports, np, services };
}

test('kubegate: replicas reach each other on the pod IP and a fixed peer port, admitted from proxy pods only', async () => {
  const r = await proxyRender([]);
  assert.equal(r.value('KUBEGATE_PEER_LISTEN'), '0.0.0.0:8446');
  // Kubernetes expands $(POD_IP) only from a variable defined earlier in the list.
  const podIp = r.env.findIndex((e) => e.name === 'POD_IP');
  const peer = r.env.findIndex((e) => e.name === 'KUBEGATE_PEER_ADDRESS');
  assert.ok(podIp >= 0 && podIp < peer, 'POD_IP is defined before KUBEGATE_PEER_ADDRESS');
  assert.deepEqual(r.env[podIp]!.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
  assert.equal(r.value('KUBEGATE_PEER_ADDRESS'), '$(POD_IP):8446');
  assert.ok(r.ports.some((p) => p.name === 'peer' && p.containerPort === 8446));
  // The peer port is not published by any Service: replicas dial pod IPs.
  for (const svc of r.services) {
    const ports = (svc.spec as { ports: { targetPort: unknown }[] }).ports;
    assert.ok(
      !ports.some((p) => p.targetPort === 'peer' || p.targetPort === 8446),
      svc.metadata.name,
    );
  }
  const rule = r.np!.ingress.find((i) => i.ports.some((p) => p.port === 8446))!;
  assert.deepEqual(rule.from, [
    { podSelector: { matchLabels: (r.np!.podSelector as { matchLabels: unknown }).matchLabels } },
  ]);
  assert.equal(r.np!.egress, undefined, 'egress stays unrestricted unless rules are given');

  const v6 = await proxyRender([{ peer: { podIPv6: true }, ports: { peer: 9446 } }]);
  assert.equal(v6.value('KUBEGATE_PEER_LISTEN'), '[::]:9446');
  assert.equal(v6.value('KUBEGATE_PEER_ADDRESS'), '[$(POD_IP)]:9446');

  // With egress restricted, the chart adds the rule to reach the other replicas' peer port.
  const egress = await proxyRender([
    { networkPolicy: { egress: [{ ports: [{ port: 5432, protocol: 'TCP' }] }] } },
  ]);
  const out = egress.np!.egress!.find((e) => e.ports.some((p) => p.port === 8446))!;
  assert.deepEqual(out.to, rule.from);
});

test('kubegate: workers per pod — the setting as env, and a peer port per worker admitted', async () => {
  const peerRule = (np: NonNullable<Awaited<ReturnType<typeof proxyRender>>['np']>) =>
    np.ingress.find((i) => i.ports.some((p) => p.port === 8446))!.ports[0]!;
  const one = await proxyRender([]);
  assert.equal(one.value('KUBEGATE_WORKERS'), '1');
  assert.equal(peerRule(one.np!).endPort, undefined);
  const three = await proxyRender([{ workers: 3 }]);
  assert.equal(three.value('KUBEGATE_WORKERS'), '3');
  assert.equal(peerRule(three.np!).endPort, 8448);
  const auto = await proxyRender([
    { workers: 'auto', networkPolicy: { egress: [{ ports: [{ port: 5432, protocol: 'TCP' }] }] } },
  ]);
  assert.equal(auto.value('KUBEGATE_WORKERS'), 'auto');
  assert.equal(peerRule(auto.np!).endPort, 8453);
  const out = auto.np!.egress!.find((e) => e.ports.some((p) => p.port === 8446))!;
  assert.equal(out.ports[0]!.endPort, 8453);
  // The schema refuses what the proxy would refuse at start.
  for (const bad of [0, 'many', '1.5'])
    await assert.rejects(
      renderObjects('kubegate', { ciValues: ['minimal-values.yaml'], values: [{ workers: bad }] }),
      /workers/,
      String(bad),
    );
});

test('kubegate: enrollment has its own port and Service; the address defaults to the tunnel host', async () => {
  const r = await proxyRender([]);
  assert.equal(r.value('KUBEGATE_ENROLL_LISTEN'), '0.0.0.0:8445');
  assert.equal(r.value('KUBEGATE_ENROLL_ADDRESS'), 'kubegate-tunnel.example.com:8445');
  assert.ok(r.ports.some((p) => p.name === 'enroll' && p.containerPort === 8445));
  const svc = r.services.find((s) => s.metadata.name === 'kubegate-enroll')!;
  assert.deepEqual((svc.spec as { ports: unknown[] }).ports, [
    { name: 'enroll', port: 8445, targetPort: 'enroll', protocol: 'TCP' },
  ]);
  assert.ok(r.np!.ingress.some((i) => i.ports.some((p) => p.port === 8445)));
  // The serving certificate covers the enrollment host and service too.
  const full = await proxyRender([], 'full-values.yaml');
  assert.equal(full.value('KUBEGATE_ENROLL_ADDRESS'), 'kubegate-enroll.example.com:443');
  const hosts = full.value('KUBEGATE_TLS_HOSTS')!.split(',');
  for (const h of ['kubegate-enroll.example.com', 'kubegate-enroll.kubegate-system.svc'])
    assert.ok(hosts.includes(h), `${h} in ${hosts.join(',')}`);
  // An IPv6 tunnel address keeps its brackets in the derived enrollment address.
  const v6 = await proxyRender([
    { tunnelAddress: '[2001:db8::5]:8444', service: { enroll: { port: 9445 } } },
  ]);
  assert.equal(v6.value('KUBEGATE_ENROLL_ADDRESS'), '[2001:db8::5]:9445');
});

test('kubegate: recordings in S3 — settings as env, credentials from a Secret, never inline in the Deployment', async () => {
  const byDefault = await proxyRender([]);
  assert.equal(byDefault.value('KUBEGATE_RECORDING_STORAGE'), 'postgres');
  assert.equal(byDefault.value('KUBEGATE_RECORDING_RETENTION'), '90d');
  assert.ok(!byDefault.env.some((e) => e.name.startsWith('KUBEGATE_RECORDING_S3_')));
  const s3 = {
    recording: {
      storage: 's3',
      retention: '30d',
      s3: {
        endpoint: 'https://minio.example:9000',
        bucket: 'kg-rec',
        forcePathStyle: true,
        accessKeyId: 'AKIAEXAMPLE',
        secretAccessKey: 'example-secret-key',
      },
    },
  };
  const r = await proxyRender([s3]);
  assert.equal(r.value('KUBEGATE_RECORDING_STORAGE'), 's3');
  assert.equal(r.value('KUBEGATE_RECORDING_RETENTION'), '30d');
  assert.equal(r.value('KUBEGATE_RECORDING_S3_ENDPOINT'), 'https://minio.example:9000');
  assert.equal(r.value('KUBEGATE_RECORDING_S3_BUCKET'), 'kg-rec');
  assert.equal(r.value('KUBEGATE_RECORDING_S3_PREFIX'), 'recordings');
  assert.equal(r.value('KUBEGATE_RECORDING_S3_FORCE_PATH_STYLE'), 'true');
  for (const n of [
    'KUBEGATE_RECORDING_S3_ACCESS_KEY_ID',
    'KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY',
  ]) {
    const e = r.env.find((x) => x.name === n)!;
    assert.equal(e.value, undefined, `${n} is not inline`);
    assert.deepEqual(e.valueFrom, { secretKeyRef: { name: 'kubegate', key: n } });
  }
  const { objects } = await renderObjects('kubegate', {
    ciValues: ['minimal-values.yaml'],
    values: [s3],
  });
  const secret = objects.find((o) => o.kind === 'Secret')! as unknown as {
    stringData: Record<string, string>;
  };
  assert.equal(secret.stringData.KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY, 'example-secret-key');
  // An existing Secret instead; or no keys at all: the SDK's default chain (no env).
  const existing = await proxyRender([
    { recording: { storage: 's3', s3: { bucket: 'kg-rec', existingSecret: 'my-s3' } } },
  ]);
  const ref = existing.env.find((x) => x.name === 'KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY')!;
  assert.deepEqual(ref.valueFrom, {
    secretKeyRef: { name: 'my-s3', key: 'KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY' },
  });
  const chain = await proxyRender([{ recording: { storage: 's3', s3: { bucket: 'kg-rec' } } }]);
  assert.ok(!chain.env.some((e) => e.name.includes('ACCESS_KEY')));
});

test('image, chart appVersion, package version and the default agent image agree', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as {
    version: string;
  };
  for (const chart of charts) {
    const meta = parse(readFileSync(join(chartPath(chart), 'Chart.yaml'), 'utf8')) as {
      appVersion: string;
    };
    const values = parse(readFileSync(join(chartPath(chart), 'values.yaml'), 'utf8')) as {
      image: { repository: string };
    };
    assert.equal(meta.appVersion, pkg.version, `${chart} appVersion`);
    assert.equal(`${values.image.repository}:${meta.appVersion}`, proxyDefaults.agentImage);
  }
});

/** Values that must be refused, and what the message must say. */
const refusals: { chart: Chart; name: string; values: unknown; message: RegExp }[] = [
  // Required values: checked by the templates, with the fix in the message.
  {
    chart: 'kubegate',
    name: 'no publicUrl',
    values: { publicUrl: '' },
    message: /set publicUrl to the https:\/\/ URL/,
  },
  {
    chart: 'kubegate',
    name: 'no tunnelAddress',
    values: { tunnelAddress: '' },
    message: /set tunnelAddress to the host:port agents dial/,
  },
  {
    chart: 'kubegate',
    name: 'no database',
    values: { database: { url: '' } },
    message: /set database\.url \(postgres:\/\/…\) or database\.existingSecret/,
  },
  {
    chart: 'kubegate',
    name: 'no master key',
    values: { masterKey: { value: '' } },
    message:
      /set masterKey\.existingSecret \(recommended\) or masterKey\.value.*openssl rand -base64 32/,
  },
  {
    chart: 'kubegate',
    name: 'a master key of the wrong length',
    values: { masterKey: { value: 'c2hvcnQ=' } },
    message: /masterKey\.value must be exactly 32 random bytes in base64/,
  },
  {
    chart: 'kubegate',
    name: 'a chart-managed setting in config',
    values: { config: { KUBEGATE_PUBLIC_URL: 'https://x' } },
    message: /config\.KUBEGATE_PUBLIC_URL is managed by the chart/,
  },
  {
    chart: 'kubegate',
    name: 'a pod label the chart owns',
    values: { podLabels: { 'app.kubernetes.io/name': 'x' } },
    message: /podLabels\.app\.kubernetes\.io\/name would override a label the chart sets/,
  },
  {
    chart: 'kubegate',
    name: 'minReplicas above maxReplicas',
    values: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } },
    message: /minReplicas must not exceed autoscaling\.maxReplicas/,
  },
  {
    chart: 'kubegate',
    name: 'recordings in S3 without a bucket',
    values: { recording: { storage: 's3' } },
    message: /recording\.storage is s3: set recording\.s3\.bucket/,
  },
  {
    chart: 'kubegate',
    name: 'an S3 access key without its secret',
    values: { recording: { s3: { accessKeyId: 'AKIA' } } },
    message: /set recording\.s3\.accessKeyId and recording\.s3\.secretAccessKey together/,
  },
  {
    chart: 'kubegate',
    name: 'a recording store kubegate does not have',
    values: { recording: { storage: 'ftp' } },
    message: /at '\/recording\/storage'/,
  },
  {
    chart: 'kubegate',
    name: 'a retention that is not a duration',
    values: { recording: { retention: 'forever' } },
    message: /at '\/recording\/retention'/,
  },
  // Types and shapes: the values schema, with the path of the bad value.
  {
    chart: 'kubegate',
    name: 'plain http publicUrl',
    values: { publicUrl: 'http://kubegate.example.com' },
    message: /at '\/publicUrl': 'http:\/\/kubegate\.example\.com' does not match pattern/,
  },
  {
    chart: 'kubegate',
    name: 'a tunnel address without port',
    values: { tunnelAddress: 'tunnel.example.com' },
    message: /at '\/tunnelAddress'/,
  },
  {
    chart: 'kubegate',
    name: 'a non-postgres database URL',
    values: { database: { url: 'mysql://db/kubegate' } },
    message: /at '\/database\/url'/,
  },
  {
    chart: 'kubegate',
    name: 'a setting that is not KUBEGATE_*',
    values: { config: { LOG_LEVEL: 'debug' } },
    message: /invalid propertyName 'LOG_LEVEL'[\s\S]*does not match pattern '\^KUBEGATE_/,
  },
  {
    chart: 'kubegate',
    name: 'an unknown service type',
    values: { service: { tunnel: { type: 'External' } } },
    message:
      /at '\/service\/tunnel\/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'/,
  },
  {
    chart: 'kubegate',
    name: 'replicas as a string',
    values: { replicaCount: 'three' },
    message: /at '\/replicaCount': got string, want integer/,
  },
  {
    chart: 'kubegate',
    name: 'a typo in a value name',
    values: { replicas: 3 },
    message: /additional properties 'replicas' not allowed/,
  },
  {
    chart: 'kubegate',
    name: 'a privileged container port',
    values: { ports: { front: 443 } },
    message: /at '\/ports\/front': minimum: got 443, want 1,?024/,
  },
  {
    chart: 'kubegate',
    name: 'an anti-affinity mode that does not exist',
    values: { podAntiAffinity: 'strict' },
    message: /at '\/podAntiAffinity': value must be one of 'soft', 'hard'/,
  },
  {
    chart: 'kubegate-agent',
    name: 'no cluster',
    values: { cluster: '' },
    message: /set cluster to the name registered with `kubegate admin cluster add NAME`/,
  },
  {
    chart: 'kubegate-agent',
    name: 'no token',
    values: { bootstrap: { token: '' } },
    message: /set bootstrap\.token to the one-time token/,
  },
  {
    chart: 'kubegate-agent',
    name: 'a CA that is not PEM',
    values: { bootstrap: { proxyCa: 'abc' } },
    message: /set bootstrap\.proxyCa to the proxy CA certificate in PEM/,
  },
  {
    chart: 'kubegate-agent',
    name: 'a cluster name that is not a DNS label',
    values: { cluster: 'EU_1' },
    message: /at '\/cluster': 'EU_1' does not match pattern/,
  },
  {
    chart: 'kubegate-agent',
    name: 'a token of another kind',
    values: { bootstrap: { token: 'kg_abc' } },
    message: /at '\/bootstrap\/token'/,
  },
  {
    chart: 'kubegate-agent',
    name: 'a tunnel address without port',
    values: { tunnelAddress: 'tunnel' },
    message: /at '\/tunnelAddress'/,
  },
  {
    chart: 'kubegate-agent',
    name: 'no enrollAddress',
    values: { enrollAddress: '' },
    message: /set enrollAddress to the host:port of the proxy enrollment listener/,
  },
  {
    chart: 'kubegate-agent',
    name: 'an enrollment address without port',
    values: { enrollAddress: 'enroll.example.com' },
    message: /at '\/enrollAddress'/,
  },
  {
    chart: 'kubegate',
    name: 'an enrollment address without port',
    values: { enrollAddress: 'enroll.example.com' },
    message: /at '\/enrollAddress'/,
  },
  {
    chart: 'kubegate',
    name: 'a chart-managed peer setting in config',
    values: { config: { KUBEGATE_PEER_ADDRESS: '10.0.0.1:8446' } },
    message: /config\.KUBEGATE_PEER_ADDRESS is managed by the chart/,
  },
  {
    chart: 'kubegate-agent',
    name: 'an image digest that is not sha256',
    values: { image: { digest: 'latest' } },
    message: /at '\/image\/digest'/,
  },
];

for (const r of refusals) {
  test(`${r.chart} refuses ${r.name}`, async () => {
    const res = await helmTemplate(r.chart, {
      ciValues: ['minimal-values.yaml'],
      values: [r.values],
    });
    assert.notEqual(
      res.code,
      0,
      `helm template should fail; rendered:\n${res.stdout.slice(0, 300)}`,
    );
    assert.match(res.stderr, r.message);
  });
}

test('NOTES.txt renders and says what to do next', async () => {
  const want: Record<Chart, RegExp[]> = {
    kubegate: [
      /rollout status deploy\/kubegate/,
      /admin cluster add eu-1/,
      /back up the master key/,
    ],
    'kubegate-agent': [/"tunnel up"/, /helm test kubegate-agent/, /admin cluster bootstrap eu-1/],
  };
  for (const chart of charts) {
    const r = await helm([
      'install',
      chart,
      chartPath(chart),
      '--dry-run=client',
      '--namespace',
      'kubegate',
      '-f',
      join(chartPath(chart), 'ci', 'minimal-values.yaml'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    for (const re of want[chart]) assert.match(notes, re, `${chart} NOTES`);
  }
});
