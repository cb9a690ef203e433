/**
 * Errors a user can act on (bad file, bad flag, non-MoE model, truncated trace …).
 * The CLI prints `moescope: <message>` on one line and exits 2 — never a stack trace.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** One line describing any thrown value, for messages. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}
