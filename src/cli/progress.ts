/**
 * Progress a person can follow. In a log (CI, pipes): one line per target per step. In a terminal: one
 * line per finished target and a live status line below them, clipped to the terminal's width (a line
 * that wraps cannot be redrawn in place: each redraw would leave a stale copy) and redrawn when the
 * terminal is resized. Colour only in a terminal, never with NO_COLOR (style.ts). Step details and
 * errors carry server text, printed as safe single lines (report/sanitize).
 */
import type { TargetResult } from '../deploy/result';
import type { StepEvent } from '../deploy/target';
import type { AnalysisEvent } from '../deploy/analysis';
import { seconds } from '../report/render';
import { sanitizeLine } from '../report/sanitize';
import { painter, type Paint, type Style } from './style';

export interface ProgressOptions {
  write: (text: string) => void;
  tty: boolean;
  color: boolean;
  total: number;
  now?: () => number;
  /**
   * The terminal's width now, asked of the terminal at each draw (it changes, and a busy process hears
   * of a resize late); undefined: 80.
   */
  columns?: () => number | undefined;
  /** Calls `redraw` on each resize; returns how to stop. */
  onResize?: (redraw: () => void) => () => void;
}

type Segment = [text: string, style?: Style];

/** The segments cut to `width` characters, the last cut one ending in "…". */
export function clip(segments: readonly Segment[], width: number): Segment[] {
  const out: Segment[] = [];
  let room = width;
  for (const [text, style] of segments) {
    const chars = [...text];
    if (chars.length <= room) {
      out.push([text, style]);
      room -= chars.length;
      continue;
    }
    if (room > 0) out.push([`${chars.slice(0, room - 1).join('')}…`, style]);
    break;
  }
  return out;
}

export class Progress {
  private done = 0;
  private failed = 0;
  private wave = '';
  /** Each target in flight: its step now and when it started (the status line shows both). */
  private readonly running = new Map<string, { step: string; since: number }>();
  /** Redraws the status line each second, so the elapsed times move while a gate waits. */
  private readonly ticker?: ReturnType<typeof setInterval>;
  private statusShown = false;
  /** The width the status line was drawn for, and how many characters it took. */
  private drawn = { columns: 0, length: 0 };
  private readonly paint: Paint;
  private readonly stopResize?: () => void;

  constructor(private readonly o: ProgressOptions) {
    this.paint = painter(o.color);
    if (o.tty) this.stopResize = o.onResize?.(() => this.redraw());
    if (o.tty) {
      this.ticker = setInterval(() => this.statusShown && this.running.size && this.status(), 1000);
      this.ticker.unref?.();
    }
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private line(text: string): void {
    if (this.o.tty) this.clearStatus(this.columns());
    this.o.write(`${text}\n`);
    if (this.o.tty) this.status();
  }

  private columns(): number {
    return Math.max(10, this.o.columns?.() ?? 80);
  }

  /**
   * Clears the status line. If the terminal is narrower than when it was drawn, a terminal that reflows
   * (most do) may have wrapped it onto several rows of the new width: go up to its first row and clear
   * to the end of the screen. Every clear checks, not only the one a resize signal calls: on a loaded
   * machine a line or a redraw can come between the resize and the signal's handling.
   */
  private clearStatus(columns: number): void {
    if (!this.statusShown) return;
    const rows = columns === this.drawn.columns ? 1 : Math.ceil(this.drawn.length / columns);
    this.o.write(`\r${rows > 1 ? `\x1b[${rows - 1}A` : ''}\x1b[J`);
    this.statusShown = false;
  }

  private redraw(): void {
    if (this.statusShown) this.status();
  }

  private status(): void {
    const columns = this.columns();
    this.clearStatus(columns);
    const names = [...this.running].map(
      ([id, r]) => `${id} ${r.step} ${Math.floor((this.now() - r.since) / 1000)}s`,
    );
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` +${names.length - 3}` : '');
    const width = 20;
    const filled = Math.round((this.done / Math.max(1, this.o.total)) * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const segments: Segment[] = [
      [`${this.wave} ${bar} ${this.done}/${this.o.total}`],
      ...(this.failed ? [[` · ${this.failed} failed`, 'red'] as Segment] : []),
      ...(shown ? [[` · ${shown}`, 'dim'] as Segment] : []),
    ];
    // One column short of the width: a line that fills the last column wraps on some terminals.
    const line = clip(segments, columns - 1);
    this.o.write(`\r${line.map(([t, style]) => (style ? this.paint(t, style) : t)).join('')}`);
    this.drawn = { columns, length: line.reduce((n, [t]) => n + [...t].length, 0) };
    this.statusShown = true;
  }

  onWave = (e: { wave: number; of: number; targets: number; status: 'start' | 'done' }): void => {
    if (e.status !== 'start') return;
    this.wave = `wave ${e.wave}/${e.of}`;
    this.line(
      this.paint(`── wave ${e.wave} of ${e.of}: ${e.targets} target${e.targets === 1 ? '' : 's'}`, 'bold'),
    );
  };

  /** The analysis between waves: what it measures, each measurement, and its outcome. */
  onAnalysis = (e: AnalysisEvent): void => {
    if (e.status === 'start')
      this.line(
        this.paint(
          `── analysis after wave ${e.wave}: soak ${seconds(e.soakMs)}, checks ${e.checks.join(', ')}`,
          'bold',
        ),
      );
    else if (e.status === 'measurement') {
      const m = e.measurement;
      const color = m.outcome === 'successful' ? 'green' : m.outcome === 'failed' ? 'red' : 'yellow';
      this.line(
        `check ${e.check.name}${e.check.dryRun ? ' (dry run)' : ''}  ${this.paint(m.outcome, color)}  ` +
          sanitizeLine(m.value) +
          (m.detail ? `  ${sanitizeLine(m.detail)}` : ''),
      );
    } else {
      const a = e.analysis;
      const color = a.decision === 'proceed' ? 'green' : a.decision === 'pause' ? 'yellow' : 'red';
      this.line(`analysis after wave ${e.wave}  ${this.paint(a.outcome, color)}  ${sanitizeLine(a.reason)}`);
    }
  };

  onStep = (e: StepEvent): void => {
    if (e.status === 'start')
      this.running.set(e.target, { step: e.step, since: this.running.get(e.target)?.since ?? this.now() });
    if (this.o.tty) {
      if (e.status === 'fail')
        this.line(`${e.target}  ${this.paint(`${e.step} failed`, 'red')}: ${sanitizeLine(e.detail ?? '')}`);
      else this.status();
      return;
    }
    if (e.status === 'start' && !e.detail) return;
    const state = e.status === 'ok' ? 'ok' : e.status === 'fail' ? 'FAILED' : '';
    this.o.write(
      `${e.target}  ${e.step}  ${state}${e.ms !== undefined ? `  ${seconds(e.ms)}` : ''}${e.detail ? `  ${sanitizeLine(e.detail)}` : ''}\n`,
    );
  };

  onTarget = (r: TargetResult): void => {
    this.running.delete(r.id);
    this.done++;
    if (r.outcome === 'failed' || r.outcome === 'rolled-back') this.failed++;
    const color =
      r.outcome === 'deployed' || r.outcome === 'unchanged'
        ? 'green'
        : r.outcome === 'skipped'
          ? 'yellow'
          : 'red';
    this.line(
      `${r.id}  ${this.paint(r.outcome, color)}  ${seconds(r.durationMs)}` +
        (r.error && r.outcome !== 'skipped' ? `  ${sanitizeLine(r.error)}` : ''),
    );
  };

  finish(): void {
    this.stopResize?.();
    if (this.ticker) clearInterval(this.ticker);
    if (this.o.tty) this.clearStatus(this.columns());
  }
}
