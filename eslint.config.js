// Lint rules: typescript-eslint's recommended set plus the few rules that keep
// our conventions honest: only errors are thrown, never strings (KgError from
// common/errors.ts for every failure raised on purpose, with `cause` for
// wrapped ones); no `any`; and no console output in the programs, which log
// through common/log.ts (pino, credentials redacted) — console.error only for
// the last word before a process exits. Tests, bench and the CLI may print.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.dev/**', 'test/cluster/**', 'bin/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      'no-throw-literal': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'proxy/cli/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
