export interface RequestRecord {
  seq: number;
  method: string;
  path: string;
  query: string;
  /** The HTTP status answered; 0 when the connection was dropped (injected disconnect); null while in flight. */
  status: number | null;
  receivedAt: string;
}

/** The most recent API requests, so a test can see what a client really sent (and that it retried). */
export class RequestLog {
  private readonly records: RequestRecord[] = [];
  private seq = 0;

  constructor(private readonly capacity: number) {}

  start(method: string, url: string): RequestRecord {
    const mark = url.indexOf("?");
    const path = mark < 0 ? url : url.slice(0, mark);
    const query = mark < 0 ? "" : url.slice(mark + 1);
    const record = { seq: ++this.seq, method, path, query, status: null, receivedAt: new Date().toISOString() };
    this.records.push(record);
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity);
    return record;
  }

  list(filter: { method?: string; path?: string } = {}): RequestRecord[] {
    return this.records
      .filter((record) => (!filter.method || record.method === filter.method) && (!filter.path || record.path.startsWith(filter.path)))
      .map((record) => ({ ...record }));
  }
}
