// Every benchmark's command line, checked before it starts: --help prints its usage, and an unknown or
// mistyped flag stops it (a run takes minutes, and `--step 3` for `--steps 3` silently ran the default).
'use strict';

/**
 * Exits 0 with `usage` on --help, 2 on an argument not in `values` (flags that take a value) or `flags`
 * (flags that stand alone), or a value flag given last without its value.
 */
function checkArgs(usage, { values = [], flags = [] } = {}, argv = process.argv.slice(2)) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  const fail = (why) => {
    console.error(`${why}\n${usage}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (values.includes(`--${a.replace(/^--/, '')}`) && a.startsWith('--')) {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      i++;
    } else if (!flags.includes(a)) fail(`unknown argument ${a}`);
  }
}

module.exports = { checkArgs };
