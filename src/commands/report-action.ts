/** The action behind `moescope report TRACE -o FILE`: collect from the trace, render, write one HTML file. */
import { UserError } from '../core/errors.js';
import { resolveOutput, writeOutputFile } from '../core/output.js';
import { printError, printText } from '../core/sanitize.js';
import { moescopeVersion } from '../core/version.js';
import { routingSource } from './dataset-action.js';
import type { DatasetFlags } from './options.js';
import { collectReport } from '../report/collect.js';
import { renderReportHtml } from '../report/html/page.js';

export interface ReportOptions extends DatasetFlags {
  output: string;
  devices?: number;
  window?: number;
}

/** The report of a balancedness series (a server log imported with `import log`). */
async function seriesReport(trace: string, o: ReportOptions): Promise<string> {
  if (o.devices !== undefined || o.window !== undefined)
    throw new UserError(`${trace} holds a balancedness series: --devices and --window do not apply`);
  const { readSeriesTrace } = await import('../trace/series.js');
  const { summariseSeries } = await import('../gate/series-check.js');
  const { renderSeriesHtml } = await import('../report/html/series.js');
  const { THEME } = await import('../report/colour.js');
  const s = readSeriesTrace(trace);
  const lines: { label: string; values: Float64Array; colour: string }[] = [];
  if (s.values.balancedness) lines.push({ label: 'balancedness', values: s.values.balancedness, colour: THEME.bar });
  if (s.values.balancedness_last_100)
    lines.push({ label: 'last 100-pass average', values: s.values.balancedness_last_100, colour: THEME.balanced });
  return renderSeriesHtml(
    {
      subject: trace,
      producer: s.header.series.producer,
      steps: s.step,
      lines,
      summary: summariseSeries(s),
    },
    { moescopeVersion: moescopeVersion(), generatedAt: new Date() },
  );
}

export async function reportCommand(trace: string, o: ReportOptions): Promise<void> {
  resolveOutput(o.output, [trace], 'report'); // never the trace itself; refused before reading it
  const { traceKind } = await import('../trace/series.js');
  const notes: string[] = [];
  const { isDatasetArg } = await import('../scale/inputs.js');
  const html =
    !isDatasetArg(trace) && traceKind(trace) === 'series'
      ? await seriesReport(trace, o)
      : await tokenReport(trace, o, notes);
  writeOutputFile(o.output, html, { inputs: [trace], what: 'report' });
  printText(`moescope report: wrote ${o.output} (${(html.length / 1024).toFixed(0)} KiB)\n`);
  for (const n of notes) printError(`note: ${n}`); // e.g. a trace that ended without being closed
}

async function tokenReport(trace: string, o: ReportOptions, notes: string[]): Promise<string> {
  const source = await routingSource(trace, o);
  notes.push(...source.notes);
  let html: string;
  try {
    const data = await collectReport(source, { devices: o.devices, window: o.window, threads: true });
    html = renderReportHtml(data, { moescopeVersion: moescopeVersion(), generatedAt: new Date() });
  } finally {
    source.close();
  }
  return html;
}
