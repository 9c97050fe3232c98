import { fileURLToPath } from 'node:url';

/** The pack shipped in the repository, used when no --model is given. */
export const DEFAULT_PACK = fileURLToPath(new URL('../../../models/tiny-random', import.meta.url));
