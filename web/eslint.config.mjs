// ESLint for the page's JavaScript (web/app), and its bundler
// (`make lint`). Formatting is prettier's (web/.prettierrc.json), not ESLint's.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["app/**/*.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["app/worker.js", "app/bigdisk.js"],
    languageOptions: { globals: { ...globals.worker } },
  },
  {
    files: ["bundle.mjs", "eslint.config.mjs"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: { ...globals.node, ...globals.browser } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "always"],
      "prefer-const": "error",
      "no-var": "error",
    },
  },
  { ignores: ["pkg/**", "node_modules/**"] },
];
