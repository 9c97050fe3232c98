// ESLint: the recommended JavaScript and TypeScript rules; formatting is Prettier's job (npm run lint runs both).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.vulkan/', '.tmp/', 'models/', 'training/', 'tools/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: { ...globals.node } } },
  // The viewer runs in the browser.
  { files: ['src/server/viewer/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
  {
    rules: {
      // `_`-prefixed names are deliberately unused (interface parameters, skipped tuple slots).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
