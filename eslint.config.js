// Lint rules: typescript-eslint's recommended set plus the few rules that keep
// the security and error-handling conventions of docs/style.md honest.
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
