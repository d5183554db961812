/**
 * Assembling the document an institution asked for from decrypted records: its field mapping
 * (output column → `type.field`) applied to the granted records, rendered as JSON, CSV
 * (RFC 4180) or XML, with the provenance of each record.
 */

import type { FieldValue } from '../plugins/data-source.js';
import type { RecordPlaintext } from '../records/record-crypto.js';

/** Where one record came from, as the extractor signed it on chain. */
export interface Provenance {
  type: string;
  digest: string;
  source: string;
  fetchedAt: number;
  sourceDigest: string;
  extractor: string;
  recordTx?: string;
  /** The genesis id of the source whose signed statement the record carries (checked by `openBundle`). */
  signedBy?: string;
}

/** Input of `assembleDocument`. */
export interface DocumentInput {
  request: string;
  subject: string;
  institution: string;
  purpose: string;
  generatedAt: number;
  /** Output column → `type.field`; empty means every field of every record as `type.field`. */
  fields: Record<string, string>;
  records: RecordPlaintext[];
  provenance: Provenance[];
}

/** A rendered document. */
export interface RenderedDocument {
  contentType: string;
  body: string;
  columns: string[];
}

/** Resolves the mapping to an ordered list of (column, value); columns of ungranted types are left out. */
export function mapFields(input: Pick<DocumentInput, 'fields' | 'records'>): [string, FieldValue][] {
  const byType = new Map(input.records.map((r) => [r.type as string, r]));
  const out: [string, FieldValue][] = [];
  const mapping = Object.entries(input.fields);
  if (mapping.length === 0) {
    for (const record of input.records) {
      for (const [field, value] of Object.entries(record.fields))
        out.push([`${record.type}.${field}`, value]);
    }
    return out;
  }
  for (const [column, source] of mapping) {
    const dot = source.indexOf('.');
    const record = byType.get(source.slice(0, dot));
    if (!record) continue;
    out.push([column, record.fields[source.slice(dot + 1)] ?? null]);
  }
  return out;
}

function csvCell(value: FieldValue): string {
  const text = value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function xmlEscape(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

/** Renders the document in `format`. */
export function assembleDocument(input: DocumentInput, format: 'json' | 'csv' | 'xml'): RenderedDocument {
  const pairs = mapFields(input);
  const columns = pairs.map(([c]) => c);
  if (format === 'csv') {
    const body = `${columns.map(csvCell).join(',')}\r\n${pairs.map(([, v]) => csvCell(v)).join(',')}\r\n`;
    return { contentType: 'text/csv; charset=utf-8', body, columns };
  }
  if (format === 'xml') {
    const lines = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<document request="${xmlEscape(input.request)}" subject="${xmlEscape(input.subject)}" institution="${xmlEscape(input.institution)}" generatedAt="${input.generatedAt}">`,
      `  <purpose>${xmlEscape(input.purpose)}</purpose>`,
      '  <fields>',
      ...pairs.map(
        ([c, v]) =>
          `    <field name="${xmlEscape(c)}"${v === null ? ' null="true"/>' : `>${xmlEscape(String(v))}</field>`}`,
      ),
      '  </fields>',
      '  <provenance>',
      ...input.provenance.map(
        (p) =>
          `    <record type="${xmlEscape(p.type)}" digest="${p.digest}" source="${xmlEscape(p.source)}" fetchedAt="${p.fetchedAt}" sourceDigest="${p.sourceDigest}" extractor="${p.extractor}"${p.signedBy === undefined ? '' : ` signedBy="${xmlEscape(p.signedBy)}"`}/>`,
      ),
      '  </provenance>',
      '</document>',
      '',
    ];
    return { contentType: 'application/xml; charset=utf-8', body: lines.join('\n'), columns };
  }
  const body = JSON.stringify(
    {
      request: input.request,
      subject: input.subject,
      institution: input.institution,
      purpose: input.purpose,
      generatedAt: input.generatedAt,
      fields: Object.fromEntries(pairs),
      provenance: input.provenance,
    },
    null,
    2,
  );
  return { contentType: 'application/json; charset=utf-8', body, columns };
}
