/** The CSV import over a CSV text with nothing behind it, for the import tests: what it would send, and its summary. */
import { Readable } from 'node:stream';
import { runImport, type RunImportOptions, type SendResult, type SentRow } from '../../src/cli/import.js';

export interface Sent {
  value: Record<string, unknown>;
  row: SentRow;
}

/**
 * runImport over `csv` (as file test.csv). Unless `o.send` is given (or it is a dry run), each row
 * it sends is kept in `sent` and answered `answer`.
 */
export async function importCsvText(csv: string, o: Omit<RunImportOptions, 'file' | 'input'>, answer: SendResult) {
  const sent: Sent[] = [];
  const send =
    o.send ??
    (async (value: Record<string, unknown>, row: SentRow): Promise<SendResult> => {
      sent.push({ value, row });
      return answer;
    });
  const input = Readable.from([csv]);
  const summary = await runImport({ ...o, file: 'test.csv', input, send: o.dryRun ? undefined : send });
  return { summary, sent };
}
