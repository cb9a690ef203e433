/**
 * Worker-thread entry: inference runs here so the UI thread stays responsive (onnxruntime-node's session.run
 * blocks its thread). Protocol (structured clone; batch buffers are transferred, not copied):
 *   in  workerData: WorkerRequest;  messages {cmd: 'pause' | 'resume' | 'stop'}
 *   out {type: 'ready', info} · {type: 'event', event} · {type: 'done', sequences} · {type: 'error', message, user}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError, describeError } from '../core/errors.js';
import { openAndRun, type WorkerMessage, type WorkerRequest } from './generation-handle.js';

const port = parentPort!;
const req = workerData as WorkerRequest;
let paused = false;
let stopped = false;
let wake: (() => void) | null = null;
port.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'pause') paused = true;
  else if (m.cmd === 'resume' || m.cmd === 'stop') {
    if (m.cmd === 'stop') stopped = true;
    paused = false;
    wake?.();
    wake = null;
  }
});
const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

openAndRun(
  req,
  {
    stopped: () => stopped,
    // Yield to the event loop between passes so pause/stop messages get through.
    waitWhilePaused: () => new Promise<void>((res) => setImmediate(() => (paused && !stopped ? (wake = res) : res()))),
  },
  post,
).then(
  () => port.close(),
  (e: unknown) => {
    post({ type: 'error', message: describeError(e), user: isUserError(e), stack: (e as Error)?.stack ?? null });
    port.close();
  },
);
