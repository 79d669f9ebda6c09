/**
 * The runbooks REST API:
 *
 *   GET    /api/v1/runbooks               every runbook (catalogue and stored), anyone signed in
 *   POST   /api/v1/runbooks               admins: save a new runbook
 *   GET    /api/v1/runbooks/{name}        one runbook
 *   PUT    /api/v1/runbooks/{name}        admins: a new version
 *   DELETE /api/v1/runbooks/{name}        admins
 *   POST   /api/v1/runs                   ask for a run {runbook, clusters, params, ticket, dryRun}
 *                                         (Idempotency-Key header: a retried POST is the same run)
 *   GET    /api/v1/runs                   run history: yours, or (admins) everyone's
 *   GET    /api/v1/runs/{id}              one run with each cluster's steps, results and diffs
 *
 * Who may ask for a run is central RBAC: the verb `run` on `runbooks`
 * (API group `kubegate.dev`, the runbook's name as the resource name) in
 * the run's namespace, on every cluster asked for. The person asking never
 * gets the runbook's own permissions: the steps run as the runbook.
 */
import { KgError, invalid } from '../../common/errors.js';
import { parseDuration } from '../../common/config.js';
import { wholeNumber } from '../../common/json-object.js';
import { selectorMatches, validateSelector } from '../../common/kube-grammar.js';
import { authorize } from '../authz/authorizer.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { RequestInfo } from '../authz/request-info.js';
import type { ClusterRef } from '../authz/types.js';
import { mount, pathParam, smallObjectBody } from '../http/routes.js';
import type { Route, RouteSpec } from '../http/routes.js';
import {
  guardCaller,
  type Caller,
  type CallerCall,
  type PolicyRouteDeps,
} from '../identity/caller.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import { checkQuery, oneOf, optional } from '../api/params.js';
import { validateParams } from './params.js';
import { renderRun } from './render.js';
import {
  cancelRun,
  createRun,
  createRunbook,
  deleteRunbook,
  getRun,
  getRunbook,
  listRunbooks,
  listRuns,
  replaceRunbook,
  runStatuses,
  type RunbookRecord,
  type RunFilter,
  type RunRecord,
} from './store.js';

/** Largest runbook definition accepted. */
const runbookBody = { object: true, maxBytes: 256 * 1024 };
const runFields = [
  'runbook',
  'clusters',
  'selector',
  'params',
  'ticket',
  'reason',
  'dryRun',
  'canary',
  'concurrency',
  'offlineWait',
];
const ticketRe = /^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,127}$/;
const keyRe = /^[\x21-\x7e]{1,128}$/;
const maxClusters = 500;

function runbookView(r: RunbookRecord) {
  return {
    ...r.spec,
    version: r.version,
    builtin: r.builtin,
    updatedBy: r.updatedBy,
    updatedAt: r.updatedAt,
  };
}

/** The RBAC request a run stands for: `run` on the runbook, in the run's namespace. */
function runInfo(runbook: string, namespace: string): RequestInfo {
  return {
    isResourceRequest: true,
    path: `/apis/kubegate.dev/v1/${namespace ? `namespaces/${namespace}/` : ''}runbooks/${runbook}`,
    verb: 'run',
    apiPrefix: 'apis',
    apiGroup: 'kubegate.dev',
    apiVersion: 'v1',
    namespace,
    resource: 'runbooks',
    subresource: '',
    name: runbook,
    parts: ['runbooks', runbook],
  };
}

interface CheckedRun {
  params: Record<string, string | number | boolean>;
  namespace: string;
  clusters: ClusterRef[];
  steps: { index: number; name: string; action: string }[];
  ticket: string;
  reason: string;
  dryRun: boolean;
  canary: number;
  concurrency: number;
  offlineWait: number;
}

/** Check a run request whole: every problem at once (422), then permission (403). */
function checkRun(
  body: Record<string, unknown>,
  rb: RunbookRecord,
  caller: Caller,
  state: PolicyState,
): CheckedRun {
  const problems: string[] = [];
  for (const k of Object.keys(body))
    if (!runFields.includes(k))
      problems.push(`${k}: unknown field (fields: ${runFields.join(', ')})`);
  // Clusters by name (in the order given: canaries first) and/or by selector (by name).
  const chosen: string[] = [];
  if (body.clusters !== undefined) {
    const raw = body.clusters;
    if (Array.isArray(raw) && raw.length <= maxClusters && raw.every((c) => typeof c === 'string'))
      chosen.push(...(raw as string[]));
    else problems.push(`clusters: must be a list of at most ${maxClusters} cluster names`);
  }
  if (body.selector !== undefined) {
    const sel = validateSelector(body.selector, 'selector', problems);
    if (sel)
      chosen.push(
        ...[...state.clusters.values()]
          .filter((c) => !c.disabled && selectorMatches(sel, c.labels))
          .map((c) => c.name)
          .sort(),
      );
  }
  const names = [...new Set(chosen)];
  if (!names.length && body.clusters === undefined && body.selector === undefined)
    problems.push('clusters: name the clusters to run on (or give a selector)');
  else if (!names.length && !problems.length) problems.push('selector: matches no enabled cluster');
  const targets = rb.spec.targets;
  const clusters: ClusterRef[] = [];
  for (const name of names) {
    const c = state.clusters.get(name);
    if (!c) problems.push(`clusters: ${JSON.stringify(name)} is not a cluster kubegate knows`);
    else if (c.disabled) problems.push(`clusters: ${JSON.stringify(name)} is disabled`);
    else if (
      (targets.clusters && !targets.clusters.includes(name)) ||
      (targets.selector && !selectorMatches(targets.selector, c.labels))
    )
      problems.push(
        `clusters: runbook ${JSON.stringify(rb.name)} does not target ${JSON.stringify(name)}`,
      );
    else clusters.push(c);
  }
  if (body.ticket !== undefined && (typeof body.ticket !== 'string' || !ticketRe.test(body.ticket)))
    problems.push(
      'ticket: must be a reference such as INC-42 (letters, digits, . _ : # / -; at most 128)',
    );
  if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 1000))
    problems.push('reason: must be a string of at most 1000 characters');
  if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean')
    problems.push('dryRun: must be true or false');
  const canary = wholeNumber(body.canary, 'canary', 0, maxClusters, 0, problems);
  const concurrency = wholeNumber(body.concurrency, 'concurrency', 1, 50, 5, problems);
  let offlineWait = 60;
  if (body.offlineWait !== undefined) {
    const ms = typeof body.offlineWait === 'string' ? parseDuration(body.offlineWait) : undefined;
    if (ms === undefined || !(ms >= 1000 && ms <= 86_400_000))
      problems.push('offlineWait: must be a duration from 1s to 24h, such as "5m"');
    else offlineWait = Math.round(ms / 1000);
  }
  const checked = validateParams(rb.spec, body.params ?? {});
  problems.push(...checked.problems.map((p) => `params: ${p}`));
  let steps: CheckedRun['steps'] = [];
  if (checked.values) {
    const r = renderRun(rb.spec, checked.values, checked.namespace, {
      now: new Date().toISOString(),
    });
    problems.push(...r.problems.map((p) => `params: ${p}`));
    steps = (r.steps ?? []).map((s) => ({ index: s.index, name: s.name, action: s.action }));
  }
  if (problems.length || !checked.values) throw invalid('run', problems);
  const namespace = checked.namespace ?? '';
  const who = { user: caller.name, groups: caller.groups, kind: caller.kind };
  const info = runInfo(rb.name, namespace);
  const now = new Date();
  const refused = clusters.filter((c) => !authorize(state.snapshot, who, info, c, now).allowed);
  if (refused.length)
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      `${caller.kind} ${JSON.stringify(caller.name)} may not run runbook ${JSON.stringify(rb.name)}${namespace ? ` in namespace ${JSON.stringify(namespace)}` : ''} on ${refused.map((c) => JSON.stringify(c.name)).join(', ')}: ask an admin for a role with verb "run" on resource "runbooks" (API group kubegate.dev)`,
    );
  return {
    params: checked.values,
    namespace,
    clusters,
    steps,
    ticket: typeof body.ticket === 'string' ? body.ticket : '',
    reason: typeof body.reason === 'string' ? body.reason : '',
    dryRun: body.dryRun === true,
    canary,
    concurrency,
    offlineWait,
  };
}

export function runbooksRoutes(d: PolicyRouteDeps): Route[] {
  /** A run, for its requester or an admin; anyone else learns nothing, not even that it exists. */
  const visibleRun = async (c: CallerCall, id: string): Promise<RunRecord> => {
    const run = await getRun(d.pool, id);
    if (
      !c.caller.admin &&
      (run.requester.name !== c.caller.name || run.requester.kind !== c.caller.kind)
    )
      throw new KgError('KG_ERR_NOT_FOUND', `run ${JSON.stringify(id)} not found`);
    return run;
  };
  const publicUrl = d.settings.publicUrl.replace(/\/+$/, '');
  const name = (c: CallerCall) => pathParam(c, 0);

  const listBooks = async (c: CallerCall) =>
    writeJson(c.res, 200, { items: (await listRunbooks(d.pool)).map(runbookView) });
  const createBook = async (c: CallerCall) => {
    const r = await createRunbook(d.pool, await c.readBody(), c.caller.actor);
    writeJson(c.res, 201, runbookView(r), { location: `/api/v1/runbooks/${r.name}` });
  };
  const getBook = async (c: CallerCall) =>
    writeJson(c.res, 200, runbookView(await getRunbook(d.pool, name(c))));
  const replaceBook = async (c: CallerCall) => {
    const r = await replaceRunbook(d.pool, name(c), await c.readBody(), c.caller.actor);
    writeJson(c.res, 200, runbookView(r));
  };
  const deleteBook = async (c: CallerCall) => {
    await deleteRunbook(d.pool, name(c), c.caller.actor);
    writeNoContent(c.res);
  };

  const history = async (c: CallerCall) => {
    const limitText = optional(c.query, 'limit') ?? '50';
    const limit = /^\d{1,3}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= 500))
      throw new KgError('KG_ERR_BAD_REQUEST', 'limit must be a whole number from 1 to 500');
    const status = oneOf(c.query, 'status', runStatuses);
    const filters: Omit<RunFilter, 'limit'> = {};
    for (const f of ['runbook', 'ticket', 'requester'] as const) {
      const v = optional(c.query, f);
      if (v) filters[f] = v;
    }
    const items = await listRuns(d.pool, {
      ...filters,
      limit,
      ...(status ? { status } : {}),
      ...(c.caller.admin ? {} : { mine: { name: c.caller.name, kind: c.caller.kind } }),
    });
    writeJson(c.res, 200, { items });
  };
  const ask = async (c: CallerCall) => {
    const body = (await c.readBody()) as Record<string, unknown>;
    const keyHeader = c.req.headers['idempotency-key'];
    if (keyHeader !== undefined && (typeof keyHeader !== 'string' || !keyRe.test(keyHeader)))
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        'Idempotency-Key must be one value of 1 to 128 visible ASCII characters',
      );
    if (typeof body.runbook !== 'string' || body.runbook === '')
      throw invalid('run', ['runbook: the name of the runbook to run is required']);
    const rb = await getRunbook(d.pool, body.runbook);
    const run = checkRun(body, rb, c.caller, d.policy());
    const ua = c.req.headers['user-agent'];
    const { run: made, created } = await createRun(d.pool, {
      runbook: rb,
      ...run,
      requester: {
        name: c.caller.name,
        kind: c.caller.kind,
        groups: c.caller.groups,
        actor: c.caller.actor,
        sourceIp: c.req.socket.remoteAddress ?? '',
        userAgent: typeof ua === 'string' ? ua.slice(0, 512) : '',
      },
      ...(keyHeader ? { idempotencyKey: keyHeader } : {}),
      publicUrl,
    });
    if (created) d.changed();
    writeJson(c.res, created ? 201 : 200, made, { location: `/api/v1/runs/${made.id}` });
  };
  const cancel = async (c: CallerCall) => {
    const body = (await c.readBody()) as Record<string, unknown>;
    const reason = body.reason ?? '';
    if (
      typeof reason !== 'string' ||
      reason.length > 1000 ||
      Object.keys(body).some((k) => k !== 'reason')
    )
      throw invalid('cancel', ['the body is {reason?: string of at most 1000 characters}']);
    await visibleRun(c, c.params[0]!);
    await cancelRun(d.pool, c.params[0]!, reason, c.caller.actor, publicUrl);
    writeJson(c.res, 200, await getRun(d.pool, c.params[0]!));
  };
  const oneRun = async (c: CallerCall) => writeJson(c.res, 200, await visibleRun(c, c.params[0]!));

  /** The handler, after refusing query parameters other than `allowed`. */
  const taking =
    (allowed: readonly string[], handle: (c: CallerCall) => Promise<void>) =>
    async (c: CallerCall) => {
      checkQuery(c.query, allowed);
      await handle(c);
    };
  const runFilters = ['runbook', 'status', 'ticket', 'requester', 'limit'];

  const specs: RouteSpec<CallerCall>[] = [
    {
      path: '/api/v1/runbooks',
      tag: 'runbooks',
      methods: {
        GET: {
          access: 'caller',
          summary: 'Every runbook: the built-in catalogue and the stored ones',
          handle: taking([], listBooks),
        },
        POST: {
          access: 'admin',
          summary: 'Save a new runbook (version 1)',
          body: runbookBody,
          responses: { 201: 'the runbook' },
          handle: taking([], createBook),
        },
      },
    },
    {
      path: '/api/v1/runbooks/{name}',
      tag: 'runbooks',
      methods: {
        GET: { access: 'caller', summary: 'One runbook', handle: taking([], getBook) },
        PUT: {
          access: 'admin',
          summary: 'Replace a runbook: a new version (runs already made keep theirs)',
          body: runbookBody,
          handle: taking([], replaceBook),
        },
        DELETE: {
          access: 'admin',
          summary: 'Delete a stored runbook (its runs stay in the history)',
          handle: taking([], deleteBook),
        },
      },
    },
    {
      path: '/api/v1/runs',
      tag: 'runbooks',
      methods: {
        GET: {
          access: 'caller',
          summary: "Run history, newest first: yours, or (admins) everyone's",
          query: runFilters,
          handle: taking(runFilters, history),
        },
        POST: {
          access: 'caller',
          summary:
            'Ask for a run {runbook, clusters | selector, params, ticket, reason, dryRun, canary, concurrency, offlineWait}; an Idempotency-Key header makes a retried POST the same run',
          body: smallObjectBody,
          responses: { 201: 'the new run', 200: 'the run this Idempotency-Key made before' },
          handle: taking([], ask),
        },
      },
    },
    {
      path: '/api/v1/runs/{id}/cancel',
      tag: 'runbooks',
      methods: {
        POST: {
          access: 'caller',
          summary:
            'Cancel a run {reason}: clusters not started never start; a running one stops before its next step',
          body: smallObjectBody,
          handle: taking([], cancel),
        },
      },
    },
    {
      path: '/api/v1/runs/{id}',
      tag: 'runbooks',
      methods: {
        GET: {
          access: 'caller',
          summary: "One run: who asked, for which ticket, each cluster's steps, results and diffs",
          handle: taking([], oneRun),
        },
      },
    },
  ];
  return mount(specs, (base, op) =>
    guardCaller(d, base.req, op).then((caller) => ({ ...base, caller })),
  );
}
