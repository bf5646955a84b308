// Lint rules: type-aware TypeScript checks, plus the two rules a network tool needs most:
// no unawaited promises (a forgotten punch or write), and no printing outside src/cli.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** One no-restricted-imports block per folder: the folders its files must not import from. */
function layers(forbidden) {
  return Object.entries(forbidden).map(([files, folders]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: folders.map((folder) => ({
            group: [`**/${folder}/*`],
            message: `${files} must not import from src/${folder}/ (the layer rule in docs/design.md).`,
          })),
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['dist/', 'dist-*/', 'node_modules/', 'bench-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'max-depth': ['error', 5],
      'no-console': 'error',
    },
  },
  { files: ['src/cli/**', 'test/**', 'bench/**'], rules: { 'no-console': 'off' } },
  // The layer rule of docs/design.md: dependencies point one way,
  //   cli -> link -> (rendezvous, nat, secure, net) and cli -> transfer -> protocol -> bottom layer.
  ...layers({
    'src/*.ts': [
      'cli',
      'config',
      'link',
      'nat',
      'net',
      'protocol',
      'rendezvous',
      'rendezvous-server',
      'secure',
      'transfer',
    ],
    'src/protocol/**': [
      'cli',
      'config',
      'link',
      'nat',
      'net',
      'rendezvous',
      'rendezvous-server',
      'secure',
      'transfer',
    ],
    'src/transfer/**': ['cli', 'link', 'nat', 'net', 'rendezvous', 'rendezvous-server'],
    'src/net/**': [
      'cli',
      'config',
      'link',
      'nat',
      'protocol',
      'rendezvous',
      'rendezvous-server',
      'secure',
      'transfer',
    ],
    'src/nat/**': ['cli', 'config', 'link', 'rendezvous', 'rendezvous-server', 'transfer'],
    'src/secure/**': [
      'cli',
      'config',
      'link',
      'nat',
      'rendezvous',
      'rendezvous-server',
      'transfer',
    ],
    'src/rendezvous/**': ['cli', 'config', 'link', 'nat', 'rendezvous-server', 'transfer'],
    'src/rendezvous-server/**': ['cli', 'config', 'link', 'nat', 'transfer'],
    'src/config/**': ['cli', 'link', 'nat', 'net', 'transfer', 'rendezvous-server'],
    'src/link/**': ['cli', 'transfer', 'rendezvous-server'],
    'src/cli/**': ['net'],
  }),
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
