/**
 * The worker of `moescope stats` on a second core (stats-threads.ts): one layer range's analyses over the batches
 * the main thread shares, its LayerPart sent back at the end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TraceAnalysis } from '../stats/analysis.js';
import { rangeBatch } from '../stats/layer-split.js';
import { UserError } from '../core/errors.js';
import { rowsOf, type RangeWorkerData, type ToWorker, type FromWorker } from './stats-threads.js';

const data = workerData as RangeWorkerData;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);
try {
  const analysis = new TraceAnalysis(data.schema, data.options);
  const scratch = { experts: new Uint16Array(0), weights: new Uint16Array(0) };
  port.on('message', (m: ToWorker) => {
    try {
      if (m.kind === 'end') {
        send({ kind: 'part', part: analysis.layerPart(data.range.start) });
        port.close();
        return;
      }
      const rows = rowsOf(m.buffer, m.length, data.L, data.K);
      const n = m.length * (data.range.end - data.range.start) * data.K;
      if (scratch.experts.length < n) {
        scratch.experts = new Uint16Array(n);
        scratch.weights = new Uint16Array(n);
      }
      analysis.add(rangeBatch(rows, data.L, data.K, data.range, scratch));
      send({ kind: 'ack' });
    } catch (e) {
      fail(e);
    }
  });
} catch (e) {
  fail(e);
}

function fail(e: unknown): void {
  send({ kind: 'error', message: e instanceof Error ? e.message : String(e), user: e instanceof UserError });
  port.close();
}
