/**
 * Python `getopt.gnu_getopt` semantics, which pygrub's command line is defined by (pygrub-spec §1.1):
 * options may follow positionals, `--opt=value` and `--opt value`, unique prefixes of long options,
 * grouped short options, an option's argument may start with '-', `--` ends options.
 */

export class GetoptError extends Error {
  constructor(
    message: string,
    readonly opt: string,
  ) {
    super(message);
    this.name = 'GetoptError';
  }
}

export interface ParsedOptions {
  /** [option as written canonically ('-q', '--entry'), value ('' when none)] in command-line order. */
  readonly opts: Array<[string, string]>;
  readonly args: string[];
}

/**
 * @param shortopts e.g. 'qilnh::' — a letter followed by ':' takes an argument.
 * @param longopts e.g. ['quiet', 'output='] — a trailing '=' takes an argument.
 */
export function gnuGetopt(argv: readonly string[], shortopts: string, longopts: readonly string[]): ParsedOptions {
  const opts: Array<[string, string]> = [];
  const args: string[] = [];
  let allOptionsFirst = false;
  let so = shortopts;
  if (so.startsWith('+')) {
    so = so.slice(1);
    allOptionsFirst = true;
  }
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] as string;
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      i = doLong(opts, arg.slice(2), longopts, argv, i);
    } else if (arg.startsWith('-') && arg !== '-') {
      i = doShorts(opts, arg.slice(1), so, argv, i);
    } else if (allOptionsFirst) {
      args.push(...argv.slice(i));
      break;
    } else {
      args.push(arg);
    }
    i++;
  }
  return { opts, args };
}

function doLong(opts: Array<[string, string]>, spec: string, longopts: readonly string[], argv: readonly string[], i: number): number {
  let opt = spec;
  let optarg: string | null = null;
  const eq = spec.indexOf('=');
  if (eq >= 0) {
    opt = spec.slice(0, eq);
    optarg = spec.slice(eq + 1);
  }
  const [hasArg, name] = longHasArgs(opt, longopts);
  if (hasArg) {
    if (optarg === null) {
      if (i + 1 >= argv.length) throw new GetoptError(`option --${name} requires argument`, name);
      optarg = argv[i + 1] as string;
      i++;
    }
  } else if (optarg !== null) {
    throw new GetoptError(`option --${name} must not have an argument`, name);
  }
  opts.push([`--${name}`, optarg ?? '']);
  return i;
}

function longHasArgs(opt: string, longopts: readonly string[]): [boolean, string] {
  const possibilities = longopts.filter((o) => o.startsWith(opt));
  if (possibilities.length === 0) throw new GetoptError(`option --${opt} not recognized`, opt);
  if (possibilities.includes(opt)) return [false, opt];
  if (possibilities.includes(`${opt}=`)) return [true, opt];
  if (possibilities.length > 1) throw new GetoptError(`option --${opt} not a unique prefix`, opt);
  let unique = possibilities[0] as string;
  const hasArg = unique.endsWith('=');
  if (hasArg) unique = unique.slice(0, -1);
  return [hasArg, unique];
}

function doShorts(opts: Array<[string, string]>, optstring: string, shortopts: string, argv: readonly string[], i: number): number {
  let rest = optstring;
  while (rest !== '') {
    const opt = rest[0] as string;
    rest = rest.slice(1);
    let optarg = '';
    if (shortHasArg(opt, shortopts)) {
      if (rest === '') {
        if (i + 1 >= argv.length) throw new GetoptError(`option -${opt} requires argument`, opt);
        rest = argv[i + 1] as string;
        i++;
      }
      optarg = rest;
      rest = '';
    }
    opts.push([`-${opt}`, optarg]);
  }
  return i;
}

function shortHasArg(opt: string, shortopts: string): boolean {
  for (let k = 0; k < shortopts.length; k++) {
    if (opt === shortopts[k] && opt !== ':') return shortopts[k + 1] === ':';
  }
  throw new GetoptError(`option -${opt} not recognized`, opt);
}

/** Python `int(str)` for base-10 text: surrounding whitespace, sign, '_' between digits. Null when Python raises. */
export function pyInt(s: string): number | null {
  const t = s.replace(/^[\s]+|[\s]+$/gu, '');
  if (!/^[+-]?\d+(?:_\d+)*$/.test(t)) return null;
  const n = Number(t.replace(/_/g, ''));
  return Number.isSafeInteger(n) ? n : null;
}
