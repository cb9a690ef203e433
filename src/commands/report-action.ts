/** The action behind `moescope report TRACE -o FILE`: collect from the trace, render, write one HTML file. */
import { resolveOutput, writeOutputFile } from '../core/output.js';
import { printText } from '../core/sanitize.js';
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
  resolveOutput(o.output, [trace], 'report'); // never the trace itself; refused before reading it
  const source = await traceSource(trace);
  let html: string;
  try {
    const data = await collectReport(source, { devices: o.devices, window: o.window, threads: true });
    html = renderReportHtml(data, { moescopeVersion: moescopeVersion(), generatedAt: new Date() });
  } finally {
    source.close();
  }
  writeOutputFile(o.output, html, { inputs: [trace], what: 'report' });
  printText(`moescope report: wrote ${o.output} (${(html.length / 1024).toFixed(0)} KiB)\n`);
}
