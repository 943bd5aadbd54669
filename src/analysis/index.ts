/** Analysis between waves: the pure engine that fleet mode and the workflow's gate job share. */
export * from './model';
export {
  analyseWave,
  checksFor,
  decide,
  plannedCheck,
  soakFor,
  type AnalysisPorts,
  type WaveInput,
} from './run';
export { ANALYSIS_PLACEHOLDERS, fill, type TemplateValues } from './template';
export { VARIABLES, conditionProblem, type CheckKind } from './condition';
