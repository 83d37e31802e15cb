// The declared internal entry point: what carriers in channels/ may use beyond the public API (ARCHITECTURE.md).
export { Pattern, patternProblem } from './protocol/pattern.js';
export { channelProblem, isPattern, messageProblem } from './protocol/names.js';
export { prepareFolder } from './broker/socket-path.js';
export { fromJsonData, toJsonData } from './cli/json-data.js';
