import { MetricDeclarations } from "@savepoint/shared";
import type { Counter, Gauge, Histogram, Registry } from "prom-client";

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
    const declare = new MetricDeclarations(registry);
    this.runs = declare.counter(
      "savepoint_reasoner_runs_total",
      "Attempts started, by how they started: fresh, resumed from a checkpoint, forked from another run's steps, or already completed",
      ["start"],
    );
    this.checkpointsDiscarded = declare.counter(
      "savepoint_reasoner_checkpoints_discarded_total",
      "Runs started fresh although a checkpoint existed, by reason (corrupted, expired, incomplete)",
      ["reason"],
    );
    this.modelCalls = declare.counter("savepoint_reasoner_model_calls_total", "Messages API calls made, by outcome (answered, retried, aborted, failed)", ["outcome"]);
    this.modelCallsSaved = declare.counter("savepoint_reasoner_model_calls_saved_total", "Model calls not made again because a run resumed from its checkpoint");
    this.interruptions = declare.counter(
      "savepoint_reasoner_interruptions_total",
      "Runs stopped before finishing, by cause (shutdown: checkpointed and requeued; lock_lost, fenced: taken over elsewhere)",
      ["cause"],
    );
    this.deadLetters = declare.counter(
      "savepoint_reasoner_dead_letters_total",
      "Runs failed for good and kept for a re-drive, by cause (stalled: crashed too often; attempts_exhausted; refused: by the model API)",
      ["cause"],
    );
    this.decisions = declare.counter("savepoint_reasoner_decisions_total", "Decisions returned, by action", ["action"]);
    this.iterations = declare.counter("savepoint_reasoner_iterations_total", "Iterations completed and checkpointed");
    this.checkpointSeconds = declare.histogram(
      "savepoint_reasoner_checkpoint_seconds",
      "Time for a confirmed checkpoint save, by snapshot kind",
      [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ["kind"],
    );
    this.activeRuns = declare.gauge("savepoint_reasoner_active_runs", "Runs this process is working on");
  }
}
