/**
 * A small, strict RFC 4180 CSV reader and writer. Accepts CRLF or LF line ends, quoted fields
 * with embedded commas, line breaks and doubled quotes, a UTF-8 byte-order mark and a final line
 * end; refuses stray quotes and unterminated quoted fields, naming the line.
 */
import { DatagrantError } from '../common/errors.js';

/** Options of `parseCsv`. */
export interface ParseCsvOptions {
  /** Field separator, one character; default `,`. */
  delimiter?: string;
  /** Skip lines that are entirely empty (default true); RFC 4180 would read them as one empty field. */
  skipEmptyLines?: boolean;
}

function csvError(line: number, why: string): DatagrantError {
  return new DatagrantError('CSV_MALFORMED', `line ${line}: ${why}`, { line });
}

/** Parses CSV text into rows of fields. Errors: `CSV_MALFORMED` with the line number. */
export function parseCsv(text: string, options: ParseCsvOptions = {}): string[][] {
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\r' || delimiter === '\n') {
    throw new DatagrantError(
      'CSV_MALFORMED',
      'delimiter must be one character other than a quote or line break',
    );
  }
  const skipEmpty = options.skipEmptyLines ?? true;
  const input = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let line = 1;
  let i = 0;
  // True once the current row has any content (a field, a delimiter or a quote).
  let rowStarted = false;

  const endRow = () => {
    row.push(field);
    field = '';
    if (!(skipEmpty && !rowStarted)) rows.push(row);
    row = [];
    rowStarted = false;
  };

  while (i < input.length) {
    const ch = input[i]!;
    if (ch === '"') {
      if (field.length > 0) throw csvError(line, 'a quote inside an unquoted field');
      rowStarted = true;
      const startLine = line;
      i++;
      for (;;) {
        if (i >= input.length) throw csvError(startLine, 'unterminated quoted field');
        const c = input[i]!;
        if (c === '"') {
          if (input[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (c === '\n') line++;
        field += c;
        i++;
      }
      const next = input[i];
      if (next !== undefined && next !== delimiter && next !== '\r' && next !== '\n') {
        throw csvError(line, 'text after a closing quote');
      }
      continue;
    }
    if (ch === delimiter) {
      rowStarted = true;
      row.push(field);
      field = '';
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      endRow();
      i += ch === '\r' && input[i + 1] === '\n' ? 2 : 1;
      line++;
      continue;
    }
    rowStarted = true;
    field += ch;
    i++;
  }
  if (rowStarted) endRow();
  return rows;
}

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/** Formats one field, quoting it when it holds a delimiter, quote, line break or edge whitespace. */
export function formatCsvField(value: string, delimiter = ','): string {
  if (NEEDS_QUOTES.test(value) || value.includes(delimiter)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

/** Formats rows as CSV with CRLF line ends (RFC 4180), ending with a line end. */
export function formatCsv(rows: readonly (readonly string[])[], delimiter = ','): string {
  return rows.map((r) => r.map((f) => formatCsvField(f, delimiter)).join(delimiter) + '\r\n').join('');
}
