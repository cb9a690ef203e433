/**
 * Which files a dataset argument names: a folder (every `.parquet`, `.arrows` and `.arrow` file under it, at any
 * depth), or a glob (`'runs/step-*.parquet'`, `'runs/**\/*.parquet'`, quoted so that moescope, not the shell,
 * expands it: a shell's expansion would give several arguments). Sorted by path, so every engine sees the files
 * in one order. Hidden files and folders (`.x`, the `.NAME.partial` files of an export still being written) are
 * left out.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { UserError, describeError } from '../core/errors.js';
import { looksLikeParquet } from '../trace/parquet-footer.js';

const TRACE_FILE = /\.(parquet|arrows|arrow)$/i;
const GLOB_CHARS = /[*?[]/;

/**
 * Whether `arg` names a dataset — a folder, a glob, or one Parquet export (read by the engines too) — rather than
 * one Arrow trace.
 */
export function isDatasetArg(arg: string): boolean {
  try {
    const st = statSync(arg);
    return st.isDirectory() || (st.isFile() && looksLikeParquet(arg));
  } catch {
    return GLOB_CHARS.test(arg);
  }
}

/** Most files a dataset may hold (a hostile folder must not make moescope open millions). */
export const MAX_FILES = 100_000;

/** The files `arg` names, sorted; a UserError when none. */
export function datasetFiles(arg: string): string[] {
  let isDir = false;
  try {
    const st = statSync(arg);
    if (st.isFile()) return [arg];
    isDir = st.isDirectory();
  } catch {
    /* not a path: a glob */
  }
  const files = isDir ? walk(arg, () => true) : globFiles(arg);
  if (files.length === 0)
    throw new UserError(
      isDir ? `${arg} holds no .parquet or .arrows files` : `${arg} matches no .parquet or .arrows files`,
    );
  return files.sort();
}

function walk(dir: string, keep: (path: string) => boolean, out: string[] = []): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new UserError(`cannot list ${dir}: ${describeError(e)}`);
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const st = statSync(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        continue; // a link to nothing
      }
    }
    if (isDir) walk(p, keep, out);
    else if (isFile && TRACE_FILE.test(e.name) && keep(p)) out.push(p);
    if (out.length > MAX_FILES) throw new UserError(`${dir}: more than ${MAX_FILES} trace files`);
  }
  return out;
}

/** The files a glob matches: its fixed leading folders are walked, the rest matched as a pattern. */
function globFiles(pattern: string): string[] {
  const parts = pattern.split(/[\\/]/);
  let fixed = 0;
  while (fixed < parts.length - 1 && !GLOB_CHARS.test(parts[fixed]!)) fixed++;
  const root = parts.slice(0, fixed).join('/') || (pattern.startsWith('/') ? '/' : '.');
  const rest = parts.slice(fixed).join('/');
  const re = globRegExp(rest);
  try {
    if (!statSync(root).isDirectory()) throw new UserError(`${pattern}: ${root} is not a folder`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${pattern}: no such folder ${root}`);
  }
  return walk(root, (p) => re.test(relative(root, p).split(sep).join('/')));
}

/** `*` and `?` within one path segment, `**` across segments, `[…]` a character class. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re +=
          '[' +
          glob
            .slice(i + 1, end)
            .replace(/^!/, '^')
            .replace(/\\/g, '\\\\') +
          ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
