/**
 * JUnit XML: one <testsuite> per scope (each layer, then "overall"), one <testcase> per rule in it, a <failure> when
 * the limit is broken. The common schema that Jenkins, GitLab and GitHub test reporters read.
 */
import { scopeName, type GateResult, type Verdict } from '../../gate/verdict.js';
import { failureLine, verdictSentence } from './verdicts.js';

/** XML-escapes text and attribute values, dropping characters XML 1.0 forbids. */
function xmlEscape(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

export function formatJunit(r: GateResult, timestamp = new Date()): string {
  const scopes = new Map<string, Verdict[]>();
  for (const v of r.verdicts) {
    const k = scopeName(v.layer, v.shape);
    if (!scopes.has(k)) scopes.set(k, []);
    scopes.get(k)!.push(v);
  }
  const total = r.verdicts.length;
  const failed = r.verdicts.filter((v) => !v.pass).length;
  const ts = timestamp.toISOString().slice(0, 19);
  const a = xmlEscape;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="${a(`moescope ${r.command}`)}" tests="${total}" failures="${failed}" errors="0" time="0">`,
  );
  let id = 0;
  for (const [scope, vs] of scopes) {
    const f = vs.filter((v) => !v.pass).length;
    const suite = `moescope ${r.command} ${scope}`;
    out.push(
      `  <testsuite name="${a(suite)}" id="${id++}" tests="${vs.length}" failures="${f}" errors="0" skipped="0" time="0" timestamp="${ts}">`,
    );
    if (id === 1) {
      out.push('    <properties>');
      out.push(`      <property name="subject" value="${a(r.subject)}"/>`);
      for (const [k, v] of r.facts) out.push(`      <property name="${a(k)}" value="${a(v)}"/>`);
      out.push('    </properties>');
    }
    const classname = `moescope.${r.command}.${scope.replace(/[^\w-]+/g, '')}`;
    for (const v of vs) {
      const open = `    <testcase classname="${a(classname)}" name="${a(v.id)}" time="0"`;
      if (v.pass) {
        out.push(`${open}/>`);
      } else {
        out.push(`${open}>`);
        out.push(
          `      <failure type="threshold" message="${a(verdictSentence(v))}">${a(`${r.subject}: ${failureLine(v)}`)}</failure>`,
        );
        out.push('    </testcase>');
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
