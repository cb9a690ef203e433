/** The action behind `moescope report TRACE -o FILE`: collect from the trace, render, write one HTML file. */
import { writeFileSync } from 'node:fs';
import { UserError } from '../core/errors.js';
import { moescopeVersion } from '../core/version.js';
import { traceSource } from '../gate/source.js';
import { collectReport } from '../report/collect.js';
import { renderReportHtml } from '../report/html/page.js';

export interface ReportOptions {
  output: string;
  devices?: number;
  window?: number;
}

export async function reportCommand(trace: string, o: ReportOptions): Promise<void> {
  const source = await traceSource(trace);
  let html: string;
  try {
    const data = await collectReport(source, { devices: o.devices, window: o.window });
    html = renderReportHtml(data, { moescopeVersion: moescopeVersion(), generatedAt: new Date() });
  } finally {
    source.close();
  }
  try {
    writeFileSync(o.output, html);
  } catch (e) {
    throw new UserError(`cannot write ${o.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  process.stdout.write(`moescope report: wrote ${o.output} (${(html.length / 1024).toFixed(0)} KiB)\n`);
}
