/**
 * The very first frame, drawn before Ink is loaded. Importing Ink, React and Yoga takes 0.3–0.5 s on an idle
 * machine (seconds on a busy one), and a live model takes seconds more to open; until Ink draws its own loading
 * screen (run-tui.tsx, the same lines), this says at once what the program is doing. Static text, nothing else:
 * once Ink runs, Ink draws everything. Imports nothing, so a command can draw it before loading anything else.
 */
const ENTER_ALT = '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J';
const LEAVE_ALT = '\x1b[?25h\x1b[?1049l';

let shown: string | null = null;

// Until the TUI reads keys in raw mode, ctrl-c is a signal: give the screen back before dying of it.
const onInterrupt = () => {
  leaveLoadingScreen();
  process.exit(130);
};
const onExit = () => leaveLoadingScreen();

/** Whether a person is at a terminal (the same test as entry.ts interactive()). */
export function onTerminal(): boolean {
  return process.stdout.isTTY === true && process.stdin.isTTY === true;
}

/** Takes the alternate screen and says what is loading; drawing the same text again does nothing. */
export function drawLoadingScreen(title: string, what: string): void {
  const text = `\x1b[1mmoescope\x1b[22m ${title}\r\n\r\n⧗ ${what}\r\n`;
  if (shown === text) return;
  if (shown === null) {
    process.once('SIGINT', onInterrupt);
    process.once('exit', onExit);
  }
  process.stdout.write((shown === null ? ENTER_ALT : '\x1b[H\x1b[2J') + text);
  shown = text;
}

function forget(): void {
  shown = null;
  process.off('SIGINT', onInterrupt);
  process.off('exit', onExit);
}

/** The TUI took the screen over (and restores it itself). */
export function loadingScreenHandedOver(): void {
  if (shown !== null) forget();
}

/** Gives the screen back when the TUI never started (an error while loading), so the error is seen. */
export function leaveLoadingScreen(): void {
  if (shown === null) return;
  forget();
  process.stdout.write(LEAVE_ALT);
}
