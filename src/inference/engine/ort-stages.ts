// Moved to backend/ort-stages.ts; kept while branches that import this path are merged.
export * from '../backend/ort-stages.js';
