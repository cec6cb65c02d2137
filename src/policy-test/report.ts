/**
 * Reports of `oidc-authz test`: text for people (a line per case, the details of each failure), and
 * JUnit XML for CI systems (testsuites → testsuite per cases file → testcase per case, failure/error).
 */
import type { CaseResult, FileResult } from './run.js';

export interface Totals {
  readonly cases: number;
  readonly passed: number;
  readonly failed: number;
  readonly errors: number;
}

export function totalsOf(files: readonly FileResult[]): Totals {
  const all = files.flatMap((file) => file.results);
  const errors = all.filter((result) => result.error !== null).length;
  const passed = all.filter((result) => result.passed).length;
  return { cases: all.length, passed, failed: all.length - passed - errors, errors };
}

/** What a failure report says about one case (text and JUnit alike). */
export function failureDetails(result: CaseResult): string {
  if (result.error !== null) return `error: ${result.error}\n`;
  let text = result.problems.map((problem) => `${problem}\n`).join('');
  if (result.answer !== null) text += `answer: ${result.answer}\n`;
  if (result.explain !== null) text += `explain:\n${indent(result.explain, '  ')}`;
  return text;
}

export function textReport(files: readonly FileResult[]): string {
  let text = '';
  for (const file of files) {
    text += `${file.file}\n`;
    for (const result of file.results) {
      text += `  ${result.passed ? 'ok   ' : result.error !== null ? 'ERROR' : 'FAIL '} ${result.name}\n`;
      if (!result.passed) text += indent(failureDetails(result), '          ');
    }
  }
  const totals = totalsOf(files);
  const errors = totals.errors > 0 ? `, ${totals.errors} could not run` : '';
  text += `${totals.cases} case${totals.cases === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}: ${totals.passed} passed, ${totals.failed} failed${errors}\n`;
  return text;
}

export function junitReport(files: readonly FileResult[]): string {
  const totals = totalsOf(files);
  const seconds = files.reduce((sum, file) => sum + file.seconds, 0);
  let xml = '<?xml version="1.0" encoding="UTF-8"?>\n';
  xml += `<testsuites name="oidc-authz test" tests="${totals.cases}" failures="${totals.failed}" errors="${totals.errors}" time="${time(seconds)}">\n`;
  for (const file of files) {
    const fileTotals = totalsOf([file]);
    xml += `  <testsuite name="${attribute(file.file)}" tests="${fileTotals.cases}" failures="${fileTotals.failed}" errors="${fileTotals.errors}" skipped="0" time="${time(file.seconds)}">\n`;
    for (const result of file.results) {
      const open = `    <testcase classname="${attribute(file.file)}" name="${attribute(result.name)}" time="${time(result.seconds)}"`;
      if (result.passed) {
        xml += `${open}/>\n`;
        continue;
      }
      const element = result.error !== null ? 'error' : 'failure';
      const message = result.error ?? result.problems[0] ?? '';
      xml += `${open}>\n      <${element} message="${attribute(message)}" type="${result.error !== null ? 'error' : 'policy-mismatch'}">${text(failureDetails(result))}</${element}>\n    </testcase>\n`;
    }
    xml += '  </testsuite>\n';
  }
  return `${xml}</testsuites>\n`;
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((line) => (line === '' ? line : prefix + line)).join('\n');
}

function time(seconds: number): string {
  return seconds.toFixed(3);
}

/** Characters XML 1.0 cannot carry at all, escaped or not (control characters but tab, LF, CR; lone surrogates; U+FFFE/U+FFFF). */
const NOT_XML = /[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;

function text(value: string): string {
  return value.replace(NOT_XML, '\ufffd').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values: quotes too, and line breaks and tabs as references (a parser would turn them into spaces). */
function attribute(value: string): string {
  return text(value).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
