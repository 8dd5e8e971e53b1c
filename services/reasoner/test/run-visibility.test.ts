import { describe, expect, it } from "vitest";
import { describeStep } from "../src/run/run-report.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { decisionOf, iterationsStored, pollUntil, settledIterations, think, useReasonerStack } from "./support.js";

const ITERATIONS = 10;

const usage: ThoughtStep["model"] = { model: "m", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 1, outputTokens: 1, ms: 1 };
const at = "2026-12-01T12:00:00.000Z";

describe("a run's job log lines", () => {
  it("say what each kind of step did, in its own terms", () => {
    const tool: ThoughtStep = {
      iteration: 1,
      type: "tool",
      toolCalls: [{ id: "t1", name: "analyze_market", input: { lookback: 20 }, result: { trend: "up" }, isError: false }],
      model: usage,
      finishedAt: at,
    };
    const question: ThoughtStep = { ...tool, iteration: 2, type: "question", question: { question: "Is volume high?", answer: "Yes, 1.2x." } };
    const options: ThoughtStep = {
      ...tool,
      iteration: 3,
      type: "options",
      options: [
        { id: "A", action: "OPEN_LONG", thesis: "trend up" },
        { id: "B", action: "HOLD", thesis: "wait" },
      ],
    };
    const evaluation: ThoughtStep = { ...tool, iteration: 4, type: "evaluation", evaluation: { optionId: "A", score: 0.7, pros: ["trend"], cons: [] } };
    const decision: ThoughtStep = { ...tool, iteration: 5, type: "decision", decision: { action: "OPEN_LONG", confidence: 0.8, rationale: "Trend and volume agree." } };

    expect([tool, question, options, evaluation, decision].map(describeStep)).toEqual([
      'iteration 1 · tool: analyze_market({"lookback":20}) → {"trend":"up"}',
      "iteration 2 · question: Is volume high? Answer: Yes, 1.2x.",
      "iteration 3 · options: A OPEN_LONG (trend up), B HOLD (wait)",
      "iteration 4 · evaluation of option A: score 0.7; pros: trend; cons: none",
      "iteration 5 · decision: OPEN_LONG at confidence 0.8: Trend and volume agree.",
    ]);
  });
});

describe("runs visible in Bull Board: job progress and job log", () => {
  const stack = useReasonerStack("reasoner-visibility", { modelLatencyMs: 150 });

  it("every iteration updates the progress and logs its step; the interruption and the resume are logged too", async () => {
    const { reasoner: first } = await stack.startInProcessReasoner();
    const job = await think(stack.producer.queue, "agent-visible", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 3);
    // Progress as Bull Board reads it, from Redis, while the run is under way.
    const midRun = await pollUntil(
      async () => (await stack.producer.queue.getJob(job.id!))!.progress as Record<string, unknown>,
      (progress) => typeof progress === "object" && Number(progress.iteration) >= 3,
    );
    expect(midRun).toMatchObject({ phase: "thinking", of: ITERATIONS, resumedAt: 0, attempt: 1, modelCalls: { made: expect.any(Number), saved: 0 } });
    await first.close();
    const stoppedAt = (await settledIterations(stack.env, job.id!)).length;
    expect((await stack.producer.queue.getJob(job.id!))!.progress).toMatchObject({ phase: "interrupted", iteration: stoppedAt });

    await stack.startInProcessReasoner();
    const result = await decisionOf(job, stack.producer.events);

    const finished = (await stack.producer.queue.getJob(job.id!))!;
    expect(finished.progress).toEqual({
      phase: "completed",
      iteration: ITERATIONS,
      of: ITERATIONS,
      resumedAt: stoppedAt,
      modelCalls: { made: ITERATIONS - stoppedAt, saved: stoppedAt },
      lastStep: "decision",
      attempt: 2,
    });
    const { logs } = await stack.producer.queue.getJobLogs(job.id!);
    const stepLines = logs.filter((line) => /^iteration \d+ · /.test(line));
    expect(stepLines.map((line) => Number(/^iteration (\d+)/.exec(line)![1]))).toEqual(Array.from({ length: ITERATIONS }, (_, i) => i + 1));
    expect(stepLines.at(-1)).toBe(`iteration ${ITERATIONS} · decision: ${result.action} at confidence ${result.confidence}: ${result.rationale}`);
    expect(logs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^started at iteration 1 of 10$/),
        expect.stringMatching(/^market from the job's marketContext \(no market data configured\): price 187.4/),
        `interrupted by a shutdown before iteration ${stoppedAt + 1}; checkpointed and requeued`,
        `resumed at iteration ${stoppedAt} of ${ITERATIONS} from its checkpoints (${stoppedAt} model calls not paid again)`,
        expect.stringMatching(/^completed after 10 iterations: /),
      ]),
    );
    // In the order they happened: the interruption between the steps before it and the resume.
    const interrupted = logs.findIndex((line) => line.startsWith("interrupted by a shutdown"));
    expect(logs.slice(0, interrupted).filter((line) => /^iteration \d+ · /.test(line))).toHaveLength(stoppedAt);
    expect(logs.findIndex((line) => line.startsWith("resumed at iteration"))).toBeGreaterThan(interrupted);
  });
});
