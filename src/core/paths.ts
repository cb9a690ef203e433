import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: the nearest folder above this module that holds a package.json. Found, not counted: the
 * same code runs from tsc's output (dist/src/core/) and from the bundles (dist/bin/, dist/bin/chunks/), at
 * different depths.
 */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Repository / package root. */
export const PACKAGE_ROOT = packageRoot();

export const BUNDLED_MODEL = join(PACKAGE_ROOT, 'fixtures', 'models', 'tiny-moe', 'model.onnx');
export const BUNDLED_PROMPTS = join(PACKAGE_ROOT, 'fixtures', 'prompts', 'demo.jsonl');
export const FIXTURES = join(PACKAGE_ROOT, 'fixtures');
