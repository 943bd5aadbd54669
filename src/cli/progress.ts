/**
 * Progress a person can follow. In a log (CI, pipes): one line per target per step. In a terminal: one
 * line per finished target and a live status line below them. Colour only in a terminal, never with
 * NO_COLOR. Step details and errors carry server text, printed as safe single lines (report/sanitize).
 */
import type { TargetResult } from '../deploy/result';
import type { StepEvent } from '../deploy/target';
import { seconds } from '../report/render';
import { sanitizeLine } from '../report/sanitize';

export interface ProgressOptions {
  write: (text: string) => void;
  tty: boolean;
  color: boolean;
  total: number;
  now?: () => number;
}

const COLORS = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export class Progress {
  private done = 0;
  private failed = 0;
  private wave = '';
  private readonly running = new Set<string>();
  private statusShown = false;

  constructor(private readonly o: ProgressOptions) {}

  private paint(text: string, color: keyof typeof COLORS): string {
    return this.o.color ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text;
  }

  private line(text: string): void {
    if (this.o.tty && this.statusShown) this.o.write('\r\x1b[2K');
    this.o.write(`${text}\n`);
    if (this.o.tty) this.status();
  }

  private status(): void {
    const names = [...this.running];
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` +${names.length - 3}` : '');
    const width = 20;
    const filled = Math.round((this.done / Math.max(1, this.o.total)) * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    this.o.write(
      `\r\x1b[2K${this.wave} ${bar} ${this.done}/${this.o.total}${this.failed ? this.paint(` · ${this.failed} failed`, 'red') : ''}${shown ? this.paint(` · ${shown}`, 'dim') : ''}`,
    );
    this.statusShown = true;
  }

  onWave = (e: { wave: number; of: number; targets: number; status: 'start' | 'done' }): void => {
    if (e.status !== 'start') return;
    this.wave = `wave ${e.wave}/${e.of}`;
    this.line(
      this.paint(`── wave ${e.wave} of ${e.of}: ${e.targets} target${e.targets === 1 ? '' : 's'}`, 'bold'),
    );
  };

  onStep = (e: StepEvent): void => {
    if (e.status === 'start') this.running.add(e.target);
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
      `${r.id}  ${this.paint(r.outcome, color)}  ${seconds(r.durationMs)}${r.error && r.outcome !== 'skipped' ? `  ${sanitizeLine(r.error)}` : ''}`,
    );
  };

  finish(): void {
    if (this.o.tty && this.statusShown) this.o.write('\r\x1b[2K');
  }
}
