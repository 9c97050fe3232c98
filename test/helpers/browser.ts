import { existsSync } from 'node:fs';
import { before, after } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { parsePipeline } from '../../src/graph/pipeline-file.js';
import { Graph } from '../../src/graph/runtime.js';
import { builtinRegistry } from '../../src/nodes/index.js';
import { createLogger } from '../../src/util/log.js';

// Debian's Chromium through playwright-core, for the viewer tests: one browser per test file, and
// every pipeline a test started stopped afterwards even when the test failed half way. Software
// WebGL (SwiftShader) works with these flags.

export const CHROMIUM = '/usr/bin/chromium';
export const skipWithoutChromium = existsSync(CHROMIUM) ? false : `Chromium not installed at ${CHROMIUM} (scripts/setup.sh installs it)`;

export function browserFixture(): { browser: () => Browser; startGraph: (yaml: string, file: string, level?: string) => Promise<Graph> } {
  let browser: Browser | null = null;
  const graphs: Graph[] = [];
  before(async () => {
    if (skipWithoutChromium) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    for (const g of graphs) await g.stop();
  });
  return {
    browser: () => browser!,
    startGraph: async (yaml, file, level = 'silent') => {
      const g = new Graph(parsePipeline(yaml, file, builtinRegistry()), { log: createLogger({ level }) });
      graphs.push(g);
      await g.start();
      return g;
    },
  };
}
