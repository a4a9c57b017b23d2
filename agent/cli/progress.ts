/**
 * Progress of long work on stderr: on a terminal, one line that updates
 * in place (`lace sandbox: pairs tested 40/94`); elsewhere (a log, a pipe,
 * CI) plain lines, about ten per phase and always the last. Other output
 * written through `line` first clears the updating line, so the two never
 * mix on a terminal.
 *
 * @example
 * const progress = new ProgressLine(process.stderr, "lace sandbox");
 * progress.count("pods started", 3, 8);
 * progress.line(process.stdout, "lace sandbox: pod a/b: node-1");
 * progress.end();
 */

/** What a progress line writes to: a stream that may be a terminal. */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export class ProgressLine {
  private showing = "";
  private lastPlain = new Map<string, number>();

  constructor(private readonly stream: ProgressStream, private readonly label: string) {}

  /** `done` of `total` of `what` are done. */
  count(what: string, done: number, total: number): void {
    const text = `${this.label}: ${what} ${done}/${total}`;
    if (this.stream.isTTY) {
      this.showing = text;
      this.stream.write(`\r\x1b[2K${text}${done >= total ? "\n" : ""}`);
      if (done >= total) this.showing = "";
      return;
    }
    // Plain lines: the first, about every tenth, and the last.
    const step = Math.max(1, Math.ceil(total / 10));
    const last = this.lastPlain.get(what) ?? 0;
    if (done === 1 || done >= total || done - last >= step) {
      this.lastPlain.set(what, done);
      this.stream.write(`${text}\n`);
    }
  }

  /** Writes a whole line to `to` (this stream or another one on the same terminal) without mixing it into the updating line. */
  line(to: ProgressStream, text: string): void {
    if (this.showing) this.stream.write("\r\x1b[2K");
    to.write(`${text}\n`);
    if (this.showing) this.stream.write(this.showing);
  }

  /** Ends an updating line that did not reach its total. */
  end(): void {
    if (this.showing) this.stream.write("\n");
    this.showing = "";
  }
}
