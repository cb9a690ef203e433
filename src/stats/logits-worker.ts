/** The worker of LogitsThread (logits-thread.ts): adds every slot of the ring to the shared LogitSums. */
import { workerData } from 'node:worker_threads';
import { LogitSums, type LogitsRows } from './logit-sums.js';
import { serveRing, type LogitsWorkerData } from './logits-thread.js';

const data = workerData as LogitsWorkerData;
const sums = new LogitSums(data.schema, new Float64Array(data.sums));
serveRing(data, (slot) => {
  // The slot's views are longer than its rows; LogitSums reads only `length` tokens.
  const rows: LogitsRows = {
    length: slot.count[0]!,
    seq: slot.seq,
    experts: slot.experts,
    weights: slot.weights,
    logits: slot.logits,
  };
  sums.add(rows);
});
