import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The most a stretch of work (one request on a rank) added to this process's resident memory: its peak resident
 * set minus the resident set when it began. On Linux the kernel's high-water mark (VmHWM) is reset when a window
 * opens (clear_refs 5), so the peak is the window's own, not the largest request the process ever served; the
 * process's lifetime peak is kept here across resets. Windows may overlap (in-process ranks, concurrent requests):
 * a reset first folds the peak so far into every open window. Where the mark cannot be reset, a window's peak is
 * the process's lifetime peak, an upper bound.
 */
export class PeakWindow {
  private peakKb = 0;
  private readonly startKb = status('VmRSS') ?? 0;

  private constructor() {}

  static open(): PeakWindow {
    foldPeak();
    try {
      writeFileSync('/proc/self/clear_refs', '5');
    } catch {
      // not Linux, or not allowed: peaks are lifetime peaks
    }
    const window = new PeakWindow();
    openWindows.add(window);
    return window;
  }

  /** MiB above the resident set at the window's start, at the window's peak so far. */
  addedMb(): number {
    this.peakKb = Math.max(this.peakKb, status('VmHWM') ?? 0);
    return Math.max(0, this.peakKb - this.startKb) / 1024;
  }

  close(): void {
    this.addedMb();
    openWindows.delete(this);
  }
}

const openWindows = new Set<PeakWindow>();
let lifetimePeakKb = 0;

function foldPeak(): void {
  lifetimePeakKb = Math.max(lifetimePeakKb, status('VmHWM') ?? 0);
  for (const window of openWindows) window.addedMb();
}

/**
 * Peak resident set of this process over its life, in MiB. On Linux getrusage's maxRSS survives exec, so a worker
 * forked from a big coordinator would report the coordinator's peak: read the address space's own high-water mark
 * (VmHWM), kept across PeakWindow's resets.
 */
export function peakRssMb(): number {
  const hwm = status('VmHWM');
  if (hwm === undefined) return process.resourceUsage().maxRSS / 1024; // not Linux: maxRSS is the best there is
  lifetimePeakKb = Math.max(lifetimePeakKb, hwm);
  return lifetimePeakKb / 1024;
}

/** A KiB field of /proc/self/status, or undefined off Linux. */
function status(field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
