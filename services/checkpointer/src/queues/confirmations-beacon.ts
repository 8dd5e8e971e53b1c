import { randomUUID } from "node:crypto";
import type { RedisConnection } from "@savepoint/shared";

/** How often a checkpointer with a backlog lane looks whether another one is taking confirmed saves. */
export const BEACON_POLL_MS = 100;

/** What a watching checkpointer does when confirmed saves start or stop flowing elsewhere. */
export interface BeaconListener {
  begin(): void;
  end(): void;
}

/**
 * Confirmations first across processes: with SNAPSHOT_LANES=confirmed the confirmed saves flow through one
 * checkpointer and the backlog drains in another, on the same machine's CPU and the same Redis. The one taking
 * confirmed saves keeps a key of the prefix alive while they flow (`shine`, one SET per half `ttlMs` at most);
 * the others poll it (`watch`) and yield their backlog while it is there. The key's TTL is Redis's clock, so a
 * checkpointer that dies mid-flow leaves nothing to clear: the key lapses and the backlog is restored.
 */
export class ConfirmationsBeacon {
  /** Tells this checkpointer's own key apart: it yields for its own confirmations without Redis. */
  private readonly id = randomUUID();
  private readonly key: string;
  private shoneAt = -Infinity;
  private poller: NodeJS.Timeout | undefined;
  private lit = false;

  constructor(
    private readonly redis: RedisConnection,
    prefix: string,
    private readonly ttlMs: number,
  ) {
    // Under the prefix (a hash tag on a cluster), like every key of this deployment.
    this.key = `${prefix}:confirmations-flowing`;
  }

  /** A confirmed save has begun here. Lost during a Redis outage, when there is no backlog draining either. */
  shine(): void {
    const now = performance.now();
    if (now - this.shoneAt < this.ttlMs / 2) return;
    this.shoneAt = now;
    this.redis.set(this.key, this.id, "PX", this.ttlMs).catch(() => {
      this.shoneAt = -Infinity;
    });
  }

  /**
   * Tells `listener` when another checkpointer's confirmed saves start flowing (`begin`) and stop (`end`,
   * once its key lapsed), polling every BEACON_POLL_MS. An unanswered poll counts as no key: a backlog never
   * stays yielded on a beacon it cannot see.
   */
  watch(listener: BeaconListener): void {
    const poll = async () => {
      const owner = await this.redis.get(this.key).catch(() => null);
      const lit = owner !== null && owner !== this.id;
      if (lit !== this.lit && this.poller) {
        this.lit = lit;
        if (lit) listener.begin();
        else listener.end();
      }
      if (this.poller) this.poller = setTimeout(() => void poll(), BEACON_POLL_MS);
    };
    this.poller = setTimeout(() => void poll(), BEACON_POLL_MS);
  }

  close(): void {
    clearTimeout(this.poller);
    this.poller = undefined;
  }
}
