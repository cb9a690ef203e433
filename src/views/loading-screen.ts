/**
 * The very first frame, drawn before Ink is loaded. Importing Ink, React and Yoga takes 0.3–0.5 s on an idle
 * machine (seconds on a busy one), and a live model takes seconds more to open; until Ink draws its own loading
 * screen (run-tui.tsx, the same lines), this says at once what the program is doing. Static text, nothing else:
 * once Ink runs, Ink draws everything.
 */
const ENTER_ALT = '\x1b[?1049h\x1b[H\x1b[2J';

export function drawLoadingScreen(out: NodeJS.WriteStream, title: string, what: string): void {
  out.write(`${ENTER_ALT}\x1b[1mmoescope\x1b[22m ${title}\r\n\r\n⧗ ${what}\r\n`);
}
