// The declared internal entry point: what carriers in channels/ may use beyond the public API (STYLE rule 2).
export { Pattern, compilePattern } from './protocol/pattern.js';
export { channelProblem, isPattern, messageProblem } from './protocol/names.js';
