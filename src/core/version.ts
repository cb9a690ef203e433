import { readFileSync } from 'node:fs';

let cached: string | null = null;

/** moescope's version, from package.json (read once, lazily: the CLI's cold start matters). */
export function moescopeVersion(): string {
  if (cached) return cached;
  const url = new URL('../../../package.json', import.meta.url);
  cached = (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  return cached;
}
