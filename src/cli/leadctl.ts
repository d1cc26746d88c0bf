/**
 * leadctl: the ops command line (CONTRACT.md §Commands), a thin shell over LeadService.
 * `npx leadctl --help` lists the commands; bin/leadctl.mjs runs this file through tsx.
 * Each command is a module of commands/; what they share (the connection, the exit codes, the
 * option parsers) is in shared.ts, how they print in output.ts.
 *
 * Exit codes: 0 done; 2 the engine refused the input (a bad field, an unknown event type, an
 * outcome that does not fit the stage, an unknown lead) or, for import, some rows were bad;
 * 1 anything else (Temporal unreachable, a bad config, an import that could not start or finish).
 */
import { Command, CommanderError, Option } from 'commander';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addCreateCommand } from './commands/create.js';
import { addEraseCommand } from './commands/erase.js';
import { addEventCommand } from './commands/event.js';
import { addExportCommand } from './commands/export.js';
import { addFunnelCommand } from './commands/funnel.js';
import { addImportCommand } from './commands/import.js';
import { addListCommand } from './commands/list.js';
import { addModelCommand } from './commands/model.js';
import { addOutcomeCommand } from './commands/outcome.js';
import { addShowCommand } from './commands/show.js';
import { addSuppressCommand } from './commands/suppress.js';
import { addWebhooksCommand } from './commands/webhooks.js';
import { addWedgedCommand } from './commands/wedged.js';
import { addWhatIfCommands } from './commands/what-if.js';
import { type Cli, defaultIo, type Io, makeAction, report } from './shared.js';

export type { Io } from './shared.js';
export { visible } from './output.js';
export { formatState, formatTimelineEntry } from './commands/show.js';
export { formatFunnel } from './commands/funnel.js';

/** The commands, in the order `leadctl --help` lists them. */
const COMMANDS = [
  addCreateCommand,
  addEventCommand,
  addOutcomeCommand,
  addShowCommand,
  addListCommand,
  addWedgedCommand,
  addFunnelCommand,
  addImportCommand,
  addModelCommand,
  addWhatIfCommands,
  addSuppressCommand,
  addWebhooksCommand,
  addExportCommand,
  addEraseCommand,
];

export function buildProgram(
  io: Io = defaultIo,
  setExit: (code: number) => void = (c) => (process.exitCode = c),
): Command {
  const program = new Command('leadctl');
  const env = (flags: string, description: string, variable: string) => new Option(flags, description).env(variable);
  program
    .description(
      'Operate the lead nurture engine on Temporal: create leads, send events, record sales outcomes, ' +
        'inspect, import CSV.',
    )
    .addOption(env('--address <host:port>', 'Temporal frontend', 'TEMPORAL_ADDRESS').default('localhost:7233'))
    .addOption(env('--namespace <ns>', 'Temporal namespace', 'TEMPORAL_NAMESPACE').default('default'))
    .addOption(
      env('--task-queue <queue>', 'task queue of the lead workers', 'TEMPORAL_TASK_QUEUE').default('lead-nurture'),
    )
    .addOption(
      env('--config <file>', 'engine config (event types, campaigns); default ./config/default.yaml', 'LEAD_CONFIG'),
    )
    .option('--json', 'machine-readable output (errors as JSON on stderr)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done; 2 input refused (bad field, unknown type, wrong stage, unknown lead) ' +
        'or some import rows bad; 1 other errors.',
    )
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')) })
    .exitOverride();

  const cli: Cli = { io, action: makeAction(io, setExit) };
  for (const add of COMMANDS) add(program, cli);
  return program;
}

/** Runs leadctl with `argv` (as process.argv) and returns the exit code. */
export async function main(argv = process.argv, io: Io = defaultIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; usage errors are already printed.
      return err.exitCode;
    }
    // An option's value refused while parsing (--by, --since…): the action never ran, so the
    // --json it would have seen is read from the command line here.
    return report(err, argv.slice(2).includes('--json'), io);
  }
  return code;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code));
}
