import { UserError } from '../core/errors.js';

/** Used by a registered command whose implementation has not landed yet: says so plainly (exit 2). */
export function pending(command: string): never {
  throw new UserError(`\`${command}\` is registered but not implemented in this build yet.`);
}
