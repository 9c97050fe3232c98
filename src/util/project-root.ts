import { fileURLToPath } from 'node:url';

/** The project's folder (models/, pipelines/), the same from src/ under tsx and from dist/. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
