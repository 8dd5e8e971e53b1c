import { randomUUID } from "node:crypto";
import { z } from "zod";

const count = z.number().int().min(1).max(1_000_000);
/** Which API requests a fault hits: a method and a path prefix ("/v2/orders" also matches "/v2/orders/{id}"). */
const target = {
  method: z.enum(["GET", "POST", "PATCH", "DELETE"]).optional(),
  path: z.string().startsWith("/", "must be a path prefix such as /v2/orders").optional(),
};

/**
 * Faults a test can inject, through the control handle or `POST /_sim/faults`:
 * - `error`: the next `count` matching requests answer `status` in Alpaca's error shape. `when: "after"`
 *   lets the request take effect first (an order is placed, then the client sees a 5xx), which is the
 *   ambiguous failure a client must resolve by looking the order up by `client_order_id`.
 * - `latency`: matching requests wait `ms` first (the next `count`, or all until cleared). `when: "after"`
 *   lets the request take effect first and holds back only its answer: a client killed in that window has
 *   sent an order the broker placed and never heard back.
 * - `disconnect`: the connection is dropped with no answer, before or after the request takes effect.
 * - `reject_orders`: the next `count` placements are refused (`mode: "http"`: a 403 and no order;
 *   `mode: "status"`: the order is accepted and then moves to status "rejected", as Alpaca's async rejections do).
 */
export const faultSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("error"),
    count,
    status: z.number().int().min(400).max(599).default(500),
    when: z.enum(["before", "after"]).default("before"),
    retryAfterSeconds: z.number().int().min(0).max(3_600).optional(),
    ...target,
  }),
  z.object({
    kind: z.literal("latency"),
    ms: z.number().int().min(1).max(120_000),
    count: count.optional(),
    when: z.enum(["before", "after"]).default("before"),
    ...target,
  }),
  z.object({ kind: z.literal("disconnect"), count, when: z.enum(["before", "after"]).default("before"), ...target }),
  z.object({
    kind: z.literal("reject_orders"),
    count,
    mode: z.enum(["http", "status"]).default("http"),
    message: z.string().min(1).max(500).default("order rejected by the simulator (injected fault)"),
  }),
]);

export type FaultSpec = z.input<typeof faultSchema>;
type Fault = z.output<typeof faultSchema>;
export type ActiveFault = Fault & { id: string; remaining: number | null };

export type RequestFailure =
  | { kind: "error"; status: number; when: "before" | "after"; retryAfterSeconds?: number; faultId: string }
  | { kind: "disconnect"; when: "before" | "after"; faultId: string };

/** The injected faults and how many requests each still has to hit. */
export class FaultInjector {
  private faults: ActiveFault[] = [];

  add(spec: Fault): ActiveFault {
    const remaining = "count" in spec && spec.count !== undefined ? spec.count : null;
    const fault = { ...spec, id: randomUUID(), remaining };
    this.faults.push(fault);
    return fault;
  }

  clear(): void {
    this.faults = [];
  }

  list(): ActiveFault[] {
    return this.faults.map((fault) => ({ ...fault }));
  }

  /**
   * What one API request suffers: the added latency of every matching latency fault (before it takes effect,
   * and after it took effect, before its answer), and at most one failure.
   */
  forRequest(method: string, path: string): { latencyMs: number; latencyAfterMs: number; failure?: RequestFailure } {
    let latencyMs = 0;
    let latencyAfterMs = 0;
    let failure: RequestFailure | undefined;
    for (const fault of this.faults) {
      if (fault.kind === "reject_orders" || (fault.method && fault.method !== method) || (fault.path && !path.startsWith(fault.path))) continue;
      if (fault.kind === "latency") {
        if (fault.when === "after") latencyAfterMs += fault.ms;
        else latencyMs += fault.ms;
        this.consume(fault);
      } else if (!failure) {
        failure =
          fault.kind === "error"
            ? { kind: "error", status: fault.status, when: fault.when, retryAfterSeconds: fault.retryAfterSeconds, faultId: fault.id }
            : { kind: "disconnect", when: fault.when, faultId: fault.id };
        this.consume(fault);
      }
    }
    this.faults = this.faults.filter((fault) => fault.remaining !== 0);
    return failure ? { latencyMs, latencyAfterMs, failure } : { latencyMs, latencyAfterMs };
  }

  /** The rejection the next order placement suffers, if any. */
  takeOrderRejection(): { mode: "http" | "status"; message: string } | undefined {
    const fault = this.faults.find((candidate) => candidate.kind === "reject_orders");
    if (!fault || fault.kind !== "reject_orders") return undefined;
    this.consume(fault);
    this.faults = this.faults.filter((candidate) => candidate.remaining !== 0);
    return { mode: fault.mode, message: fault.message };
  }

  private consume(fault: ActiveFault): void {
    if (fault.remaining !== null) fault.remaining -= 1;
  }
}
