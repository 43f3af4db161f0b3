#!/usr/bin/env node
// The `cxr` command line: each sub-command lives in its own module with a register() function.
import { Command } from 'commander';
import { z } from 'zod';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dataCommand from './data';
import * as trainCommand from './train';
import * as calibrateCommand from './calibrate';
import * as cardCommand from './card';
import * as evaluateCommand from './evaluate';
import * as compareCommand from './compare';
import * as predictCommand from './predict';
import * as reportCommand from './report';
import * as experimentsCommand from './experiments';
import * as backboneCommand from './backbone';
import * as ganCommand from './gan';
import * as oodCommand from './ood';
import * as adaptCommand from './adapt';
import * as ensembleCommand from './ensemble';
import * as robustnessCommand from './robustness';
import * as serveCommand from './serve';
import * as historyCommand from './history';
import * as orthancCommand from './orthanc';
import * as enqueueCommand from './enqueue';
import * as workerCommand from './worker';

// In the order `cxr --help` lists them.
const COMMANDS: ReadonlyArray<{ register(program: Command): void }> = [
  dataCommand,
  trainCommand,
  calibrateCommand,
  cardCommand,
  evaluateCommand,
  compareCommand,
  predictCommand,
  reportCommand,
  experimentsCommand,
  backboneCommand,
  ganCommand,
  oodCommand,
  robustnessCommand,
  adaptCommand,
  ensembleCommand,
  serveCommand,
  historyCommand,
  orthancCommand,
  enqueueCommand,
  workerCommand,
];

export function buildProgram(): Command {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  const program = new Command('cxr')
    .description('Pediatric chest X-ray pneumonia classifier: train, evaluate, report, predict, serve')
    .version(pkg.version)
    // A pointer to the help, not the whole of it: the error line stays the last thing on the screen.
    .showHelpAfterError("(add --help for the command's options)");
  for (const command of COMMANDS) command.register(program);
  return program;
}

/**
 * A reader that stops early (`cxr history | head -1`) closes the pipe, and the next write fails with
 * EPIPE, an 'error' event no command listens for: a stack trace and exit 1. Stop quietly instead, with
 * the status of a tool killed by SIGPIPE (128 + 13), as `yes | head` does. Other errors are thrown on.
 * Rows already written to the audit log stay (each insert is committed on its own).
 */
function stopQuietlyWhenClosed(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
}

if (require.main === module) {
  stopQuietlyWhenClosed(process.stdout);
  stopQuietlyWhenClosed(process.stderr);
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      // A schema's complaint (a cxr.json, a recipe, an option) as readable lines, not the issues' JSON.
      const message = e instanceof z.ZodError ? z.prettifyError(e) : e instanceof Error ? e.message : String(e);
      process.stderr.write(`cxr: ${message}\n`);
      if (process.env.CXR_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
      process.exit(1);
    });
}
