import { emptyCheckpoint, uuid6, type Checkpoint, type CheckpointMetadata } from "@langchain/langgraph-checkpoint";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";

/** Its own schema: LangGraph's tables are called `checkpoints` too, and ours are in `public`. */
const SCHEMA = "langgraph";

/**
 * LangGraph's PostgresSaver on the bench's database, as a LangGraph app uses it: one thread per session, each
 * put a checkpoint whose one channel holds the state (stored as a blob, as any non-primitive channel value
 * is), chained to the thread's previous checkpoint; getTuple reads a thread's newest checkpoint back whole.
 */
export class LangGraphPeer {
  private readonly lastConfig = new Map<string, { configurable: { thread_id: string; checkpoint_ns: string; checkpoint_id?: string } }>();
  private steps = 0;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly saver: PostgresSaver,
  ) {}

  static async open(databaseUrl: string): Promise<LangGraphPeer> {
    // PostgresSaver.fromConnString's pool, sized explicitly so that closing it is ours to do.
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
    // Dropping the bench database may terminate a connection pool.end() has not closed yet.
    pool.on("error", () => undefined);
    const saver = new PostgresSaver(pool, undefined, { schema: SCHEMA });
    await saver.setup();
    return new LangGraphPeer(pool, saver);
  }

  /** Stores `state` as the thread's next checkpoint; resolves once committed. */
  async put(threadId: string, state: Record<string, unknown>): Promise<void> {
    const step = ++this.steps;
    const config = this.lastConfig.get(threadId) ?? { configurable: { thread_id: threadId, checkpoint_ns: "" } };
    const checkpoint: Checkpoint = {
      ...emptyCheckpoint(),
      id: uuid6(-1),
      channel_values: { state },
      channel_versions: { state: step },
      versions_seen: {},
    };
    const metadata: CheckpointMetadata = { source: "loop", step, parents: {} };
    const next = await this.saver.put(config, checkpoint, metadata, { state: step });
    this.lastConfig.set(threadId, next as typeof config);
  }

  /** The thread's newest checkpoint, its state included; fails if the thread has none. */
  async getTuple(threadId: string): Promise<void> {
    const tuple = await this.saver.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: "" } });
    if (!tuple?.checkpoint.channel_values.state) throw new Error(`getTuple of thread ${threadId} found no state; seeding failed`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
