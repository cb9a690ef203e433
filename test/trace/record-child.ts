/**
 * A recording process for the crash tests: records deterministic tokens (helpers.makeBatch) in small writes,
 * printing the running token count after each write, until killed. Usage: node record-child.js TRACE [--handlers]
 */
import { TraceWriter } from '../../src/trace/index.js';
import { META, SCHEMA, makeBatch } from './helpers.js';

const [path, flag] = process.argv.slice(2);
if (path) {
  const schema = { ...SCHEMA, hasLogits: true };
  const w = TraceWriter.create(path, { schema, meta: META, batchTokens: 64, flushIntervalMs: 100 });
  if (flag === '--handlers') w.closeOnExit();
  let written = 0;
  const step = () => {
    const n = 1 + (written % 7);
    if (written % 40 < 7) w.writeMemory({ tNs: BigInt(written), gpus: null, hostRssBytes: written, ortBytes: null });
    w.write(makeBatch(schema, n, written, { tags: true }));
    written += n;
    process.stdout.write(`${written}\n`);
    setTimeout(step, 2);
  };
  step();
}
