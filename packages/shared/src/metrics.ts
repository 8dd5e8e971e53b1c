import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * Declares a service's metrics on its registry (createMetricsRegistry's), one line each: the name, the help a
 * reader of /metrics sees, then the label names (and a histogram's buckets). Typed by the label names, as
 * prom-client's own constructors are.
 */
export class MetricDeclarations {
  constructor(private readonly registry: Registry) {}

  counter<Label extends string = never>(name: string, help: string, labelNames: readonly Label[] = []): Counter<Label> {
    return new Counter<Label>({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<Label extends string = never>(name: string, help: string, labelNames: readonly Label[] = []): Gauge<Label> {
    return new Gauge<Label>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<Label extends string = never>(name: string, help: string, buckets: number[], labelNames: readonly Label[] = []): Histogram<Label> {
    return new Histogram<Label>({ name, help, buckets, labelNames, registers: [this.registry] });
  }
}
