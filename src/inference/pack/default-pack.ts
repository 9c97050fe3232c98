import { fileURLToPath } from 'node:url';

/**
 * The pack used when no --model / `model:` is given: the best one that ships (trained, not random).
 * Tests that only need the contract pass models/tiny-random explicitly.
 */
export const DEFAULT_PACK = fileURLToPath(new URL('../../../models/synthetic-small', import.meta.url));
