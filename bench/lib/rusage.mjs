// Preloaded into a process under measurement (node --import): on exit, writes its own resource usage
// (CPU time in µs, peak resident memory in KiB) as JSON to $BENCH_RUSAGE_FILE.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RUSAGE_FILE;
if (file) {
  process.on('exit', () => {
    const r = process.resourceUsage();
    writeFileSync(
      file,
      JSON.stringify({ userUs: r.userCPUTime, systemUs: r.systemCPUTime, maxRssKiB: r.maxRSS }),
    );
  });
}
