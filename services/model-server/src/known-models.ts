/**
 * The models the local model server answers for, each with the largest `max_tokens` the API accepts for it.
 *
 * Names: the `Model` union of `@anthropic-ai/sdk` 1.12.0 (resources/messages/messages.d.ts), which lists the
 * models the API served when that SDK was generated; `claude-sonnet-5-5` is the reasoner's `ANTHROPIC_MODEL`
 * default. Any other name gets the API's 404 `not_found_error`, so a typo in `ANTHROPIC_MODEL` fails here as it
 * would on the real API. When a newer SDK adds models, add them here.
 *
 * Output limits: the API reports each model's as `max_tokens` in `GET /v1/models` (the SDK's `ModelInfo`), but
 * the SDK carries no figures. Anthropic's models overview lists 64k for the 4.5 generation and 128k for
 * Opus 4.6 and later and Sonnet 4.6 (as the API's own refusal says: "max_tokens: 9999999 > 128000, which is the
 * maximum allowed number of output tokens for claude-opus-4-8"). Claude Sonnet 5 is documented at 128k; the other
 * 5.x models and `claude-mythos-preview` are taken to match it, as no figure for them was at hand. Pass
 * `models` to `createModelServer` to test other limits.
 */
const FOUR_FIVE = 64_000;
const LATER = 128_000;

export const KNOWN_MODELS: ReadonlyMap<string, { maxTokens: number }> = new Map(
  (
    [
      ["claude-fable-5-2", LATER],
      ["claude-mythos-5-2", LATER],
      ["claude-haiku-5-5", LATER],
      ["claude-sonnet-5-5", LATER],
      ["claude-fable-5-1", LATER],
      ["claude-opus-5-5", LATER],
      ["claude-mythos-5-1", LATER],
      ["claude-sonnet-5", LATER],
      ["claude-fable-5", LATER],
      ["claude-mythos-5", LATER],
      ["claude-opus-5", LATER],
      ["claude-opus-4-8", LATER],
      ["claude-opus-4-7", LATER],
      ["claude-mythos-preview", LATER],
      ["claude-opus-4-6", LATER],
      ["claude-sonnet-4-6", LATER],
      ["claude-haiku-4-5", FOUR_FIVE],
      ["claude-haiku-4-5-20251001", FOUR_FIVE],
      ["claude-opus-4-5", FOUR_FIVE],
      ["claude-opus-4-5-20251101", FOUR_FIVE],
      ["claude-sonnet-4-5", FOUR_FIVE],
      ["claude-sonnet-4-5-20250929", FOUR_FIVE],
    ] as const
  ).map(([name, maxTokens]) => [name, { maxTokens }]),
);
