import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Everything the reasoner reports on /metrics. */
export class ReasonerMetrics {
  readonly runs: Counter<"start">;
  readonly checkpointsDiscarded: Counter<"reason">;
  readonly modelCalls: Counter<"outcome">;
  readonly modelCallsSaved: Counter;
  readonly interruptions: Counter<"cause">;
  readonly deadLetters: Counter<"cause">;
  readonly decisions: Counter<"action">;
  readonly iterations: Counter;
  readonly checkpointSeconds: Histogram<"kind">;
  readonly activeRuns: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: "savepoint_reasoner_runs_total",
      help: "Attempts started, by how they started: fresh, resumed from a checkpoint, forked from another run's steps, or already completed",
      labelNames: ["start"],
      registers,
    });
    this.checkpointsDiscarded = new Counter({
      name: "savepoint_reasoner_checkpoints_discarded_total",
      help: "Runs started fresh although a checkpoint existed, by reason (corrupted, expired, incomplete)",
      labelNames: ["reason"],
      registers,
    });
    this.modelCalls = new Counter({
      name: "savepoint_reasoner_model_calls_total",
      help: "Messages API calls made, by outcome (answered, retried, aborted, failed)",
      labelNames: ["outcome"],
      registers,
    });
    this.modelCallsSaved = new Counter({
      name: "savepoint_reasoner_model_calls_saved_total",
      help: "Model calls not made again because a run resumed from its checkpoint",
      registers,
    });
    this.interruptions = new Counter({
      name: "savepoint_reasoner_interruptions_total",
      help: "Runs stopped before finishing, by cause (shutdown: checkpointed and requeued; lock_lost, fenced: taken over elsewhere)",
      labelNames: ["cause"],
      registers,
    });
    this.deadLetters = new Counter({
      name: "savepoint_reasoner_dead_letters_total",
      help: "Runs failed for good and kept for a re-drive, by cause (stalled: crashed too often; attempts_exhausted; refused: by the model API)",
      labelNames: ["cause"],
      registers,
    });
    this.decisions = new Counter({
      name: "savepoint_reasoner_decisions_total",
      help: "Decisions returned, by action",
      labelNames: ["action"],
      registers,
    });
    this.iterations = new Counter({
      name: "savepoint_reasoner_iterations_total",
      help: "Iterations completed and checkpointed",
      registers,
    });
    this.checkpointSeconds = new Histogram({
      name: "savepoint_reasoner_checkpoint_seconds",
      help: "Time for a confirmed checkpoint save, by snapshot kind",
      labelNames: ["kind"],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.activeRuns = new Gauge({
      name: "savepoint_reasoner_active_runs",
      help: "Runs this process is working on",
      registers,
    });
  }
}
