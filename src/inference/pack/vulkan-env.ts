/**
 * The software Vulkan driver that scripts/setup-vulkan.sh unpacks into `.vulkan/` (Mesa 25 lavapipe from Debian
 * bookworm-backports), so that device "webgpu" runs on machines without a GPU (CI) through the WebGPU execution
 * provider of onnxruntime-node (Dawn on Vulkan).
 *
 * When the variables are read: the Vulkan loader reads VK_ICD_FILENAMES / VK_ADD_DRIVER_FILES from the process
 * environment when Dawn creates its instance, i.e. at the first WebGPU session of the process, not when
 * onnxruntime-node is loaded. Setting `process.env` in the MAIN thread before that works (it writes the real
 * environment, which the inference worker threads share). Setting it inside a worker does not: a worker's
 * `process.env` is its own copy and never reaches the native getenv (all three verified with onnxruntime-node 1.30).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../util/project-root.js';

/** `.vulkan/` of this checkout. */
export const BUNDLED_VULKAN_DIR = path.join(PROJECT_ROOT, '.vulkan');
/** Its Vulkan driver manifest, with the absolute path of libvulkan_lvp.so. */
export const BUNDLED_VULKAN_ICD = path.join(BUNDLED_VULKAN_DIR, 'icd.json');
/** How to make it (also run by scripts/setup.sh). */
export const BUNDLED_VULKAN_SETUP = 'bash scripts/setup-vulkan.sh';

/** The variables with which a user picks Vulkan drivers; when any is set, the bundled driver is not added. */
export const VULKAN_DRIVER_VARS = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'] as const;

/** The bundled driver manifest when scripts/setup-vulkan.sh has run, else undefined. */
export function bundledVulkanIcd(): string | undefined {
  return existsSync(BUNDLED_VULKAN_ICD) ? BUNDLED_VULKAN_ICD : undefined;
}

/**
 * Environment for a child process that must run WebGPU on lavapipe and nothing else: VK_ICD_FILENAMES replaces the
 * loader's driver list (the other driver variables are cleared so they cannot add to it).
 */
export function lavapipeEnv(icd: string = BUNDLED_VULKAN_ICD): Record<string, string | undefined> {
  return { VK_ICD_FILENAMES: icd, VK_DRIVER_FILES: undefined, VK_ADD_DRIVER_FILES: undefined };
}

/**
 * Adds the bundled driver to the loader's list when the user has chosen no drivers: VK_ADD_DRIVER_FILES adds to the
 * system's drivers instead of replacing them, so a real GPU stays visible and Dawn still prefers it (CPU adapters come
 * last). Call it in the main thread before the first WebGPU session. Returns the manifest added, or undefined.
 */
export function addBundledVulkanDriver(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (VULKAN_DRIVER_VARS.some((v) => env[v])) return undefined;
  const icd = bundledVulkanIcd();
  if (icd) env.VK_ADD_DRIVER_FILES = icd;
  return icd;
}
