/**
 * Central bindings for end-to-end tests, written straight into the stack's
 * database (the admin API and CLI have their own tests). The proxy picks them
 * up through LISTEN/NOTIFY, exactly as it does an admin's edit.
 */
import type { LabelSelector } from '../../common/kube-grammar.js';
import type { Stack } from './stack.js';

export interface Grant {
  groups?: string[];
  users?: string[];
  role: string;
  clusters?: string[];
  selector?: LabelSelector;
  namespaces?: string[];
  expiresAt?: Date;
}

export async function grant(stack: Stack, g: Grant): Promise<string> {
  const subjects = [
    ...(g.groups ?? []).map((name) => ({ kind: 'Group', name })),
    ...(g.users ?? []).map((name) => ({ kind: 'User', name })),
  ];
  const rows = await stack.sql<{ id: string }>(
    `INSERT INTO bindings (subjects, role, cluster_names, cluster_selector, namespaces, expires_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, 'test') RETURNING id`,
    [
      JSON.stringify(subjects),
      g.role,
      g.clusters ?? [],
      g.selector ? JSON.stringify(g.selector) : null,
      g.namespaces ?? [],
      g.expiresAt ?? null,
    ],
  );
  return rows[0]!.id;
}

export async function ungrant(stack: Stack, id: string): Promise<void> {
  await stack.sql('DELETE FROM bindings WHERE id = $1', [id]);
}
