import { z } from "zod";

/**
 * `GET /v1/models` and `GET /v1/models/{model_id}` as the Models API answers them (`ModelInfo` and the
 * `Page` of `@anthropic-ai/sdk` 1.12.0, resources/models.d.ts and core/pagination.d.ts): `type: "model"`, the id,
 * a display name and a release time, listed newest first in pages of `limit` (1-1000, default 20) walked with
 * `after_id` / `before_id`. What the local server does not know is given as the API allows: `created_at` the
 * epoch ("may be set to an epoch value if the release date is unknown"), the capabilities, context window and
 * line `null`, every model `active`.
 */
export interface ModelInfo {
  type: "model";
  id: string;
  display_name: string;
  created_at: string;
  capabilities: null;
  deprecated_at: null;
  retires_at: null;
  lifecycle: "active";
  line: null;
  max_input_tokens: null;
  max_tokens: number;
}

const UNKNOWN_RELEASE = new Date(0).toISOString();

/** "claude-sonnet-4-5-20250929" → "Claude Sonnet 4.5", the API's style of display name. */
function displayName(id: string): string {
  const words = id.replace(/-\d{8}$/, "").split("-");
  const name = words.filter((word) => !/^\d+$/.test(word)).map((word) => word[0]!.toUpperCase() + word.slice(1));
  const version = words.filter((word) => /^\d+$/.test(word)).join(".");
  return version ? `${name.join(" ")} ${version}` : name.join(" ");
}

export function modelInfo(id: string, model: { maxTokens: number }): ModelInfo {
  return {
    type: "model",
    id,
    display_name: displayName(id),
    created_at: UNKNOWN_RELEASE,
    capabilities: null,
    deprecated_at: null,
    retires_at: null,
    lifecycle: "active",
    line: null,
    max_input_tokens: null,
    max_tokens: model.maxTokens,
  };
}

export const modelListQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1_000).default(20),
  after_id: z.string().min(1).optional(),
  before_id: z.string().min(1).optional(),
});

export interface ModelPage {
  data: ModelInfo[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/** One page of `models` (in their listed order): after `after_id`, or the `limit` just before `before_id`. */
export function modelPage(models: ReadonlyMap<string, { maxTokens: number }>, query: z.infer<typeof modelListQuerySchema>): ModelPage {
  const all = [...models].map(([id, model]) => modelInfo(id, model));
  const position = (id: string) => all.findIndex((model) => model.id === id);
  let start = 0;
  let end = all.length;
  if (query.before_id !== undefined) {
    end = Math.max(position(query.before_id), 0);
    start = Math.max(end - query.limit, 0);
  } else if (query.after_id !== undefined) {
    const after = position(query.after_id);
    start = after < 0 ? all.length : after + 1;
  }
  const data = all.slice(start, Math.min(end, start + query.limit));
  const hasMore = query.before_id !== undefined ? start > 0 : start + data.length < all.length;
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
