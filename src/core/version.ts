import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './paths.js';

let cached: string | null = null;

/** moescope's version, from package.json (read once, lazily: the CLI's cold start matters). */
export function moescopeVersion(): string {
  if (cached) return cached;
  cached = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
