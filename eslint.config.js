import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".turbo/**", "**/test-artifacts/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain Node scripts, run without a build step (`npm run stack`, container health checks, the savepoint bin).
    files: ["scripts/**/*.mjs", "services/*/bin/**/*.js"],
    languageOptions: {
      globals: Object.fromEntries(
        ["process", "console", "fetch", "URL", "AbortSignal", "AbortController", "setTimeout", "clearTimeout"].map((name) => [name, "readonly"]),
      ),
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
      // Handlers wired before the object they act on exists (hooks, proxies) read a `let` assigned once later.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
);
