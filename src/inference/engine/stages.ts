// Moved to backend/model-stages.ts; kept while branches that import this path are merged.
export * from '../backend/model-stages.js';
