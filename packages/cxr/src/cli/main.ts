#!/usr/bin/env node
// The `cxr` command line: each sub-command lives in its own module with a register() function.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';

const COMMANDS = ['data', 'train', 'calibrate', 'evaluate', 'predict', 'report', 'experiments', 'backbone', 'gan', 'ood', 'adapt', 'ensemble', 'serve', 'history', 'orthanc'];

export function buildProgram(): Command {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  const program = new Command('cxr')
    .description('Pediatric chest X-ray pneumonia classifier: train, evaluate, report, predict, serve')
    .version(pkg.version)
    .showHelpAfterError();
  for (const name of COMMANDS) {
    const file = path.join(__dirname, `${name}.js`);
    if (!fs.existsSync(file)) continue; // a command that is not built (yet) is simply absent
    (require(file) as { register(p: Command): void }).register(program);
  }
  return program;
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch((e: unknown) => {
    process.stderr.write(`cxr: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.CXR_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
}
