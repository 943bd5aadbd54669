/** A real Prometheus for tests: src/testing/prometheus.ts (the benchmarks use it too). */
export {
  havePrometheus,
  startPrometheus,
  waitForSeries,
  type TestPrometheus,
} from '../../src/testing/prometheus';
