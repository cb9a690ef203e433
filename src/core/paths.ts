import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Repository / package root (dist/src/core → ../../..). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const BUNDLED_MODEL = join(PACKAGE_ROOT, 'fixtures', 'models', 'tiny-moe', 'model.onnx');
export const BUNDLED_PROMPTS = join(PACKAGE_ROOT, 'fixtures', 'prompts', 'demo.jsonl');
export const FIXTURES = join(PACKAGE_ROOT, 'fixtures');
