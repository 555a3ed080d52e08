/**
 * GRUB 2 grub.cfg → BootMenu. A small evaluator over the syntax tree of ast.ts, following GRUB's
 * own semantics (GRUB manual §6 "Writing full configuration files directly", §15 "Shell-like
 * scripting") where pygrub's line-based parser is wrong, and pygrub's output where it works.
 *
 * Evaluation model (README lists the differences from GRUB and pygrub):
 *  - Top-level commands run in file order: `set`/`name=value`/`unset`, `if`/`elif`/`else`,
 *    `load_env`, `source`/`.`, `configfile`, `blscfg`, `menuentry`, `submenu`, and, with a
 *    DeviceResolver in the ConfigFs, `search`/`search.*` (they set `$root`) and `loopback` (device
 *    names recorded as GrubDeviceRefs on each entry: `kernelFrom`, `initrdFrom`; ../devices.ts
 *    opens them). Everything else (insmod, echo, terminal_output, functions and calls to them,
 *    loops) is not run.
 *  - Menu entry and submenu bodies run after the whole file, as in GRUB (they execute when chosen),
 *    each in a copy of the final variables of the menu that defines it.
 *  - Conditions GRUB could only decide at boot (`loadfont`, `search`, `hwmatch`, a file test
 *    without a ConfigFs) count as true: the first branch is taken. Assumed platform: grub_platform=xen,
 *    grub_cpu=x86_64, every feature_* = y.
 *  - Variables live in Maps; guest names never become object keys.
 */
import { LimitExceededError } from '../../errors.ts';
import { DEFAULT_LIMITS, type Limits } from '../../limits.ts';
import { blsToBootEntry, BLS_DIRS, readBlsDir } from '../bls.ts';
import { parseGrubenv } from '../grubenv.ts';
import { resolveGrubDefault } from '../select.ts';
import { checkConfigText, dirname, pythonInt, splitDevice, toFsPath, Warnings } from '../text.ts';
import type { BootEntry, BootMenu, ConfigFs, DeviceResolver, GrubDeviceRef, SearchKind } from '../types.ts';
import { parseScript, type Command } from './ast.ts';
import { lex, type Word } from './lexer.ts';

export interface Grub2Options {
  /** Path of the config inside the filesystem (its directory becomes `$prefix`). */
  readonly configPath: string;
  /** Filesystem for `source`, `configfile`, `load_env`, `blscfg` and file tests; without it they do nothing. */
  readonly fs?: ConfigFs;
  readonly limits?: Limits;
}

type Vars = Map<string, string>;

interface FileText {
  readonly path: string;
  readonly text: string;
}

type Item =
  | { readonly kind: 'entry'; readonly title: string; readonly id?: string; readonly cmd: Extract<Command, { t: 'menu' }>; readonly file: FileText }
  | { readonly kind: 'submenu'; readonly title: string; readonly id?: string; readonly cmd: Extract<Command, { t: 'menu' }>; readonly file: FileText }
  | { readonly kind: 'ready'; readonly entry: BootEntry };

/**
 * Device state that is not a variable: `loopback` devices (GRUB keeps them in the loopback disk
 * driver, not in the environment) and the last `search` that failed to set `root`.
 */
interface DevState {
  loops: Map<string, LoopDef>;
  /** Names `loopback -d` removed: GRUB then finds no such device (no fallback to the config's filesystem). */
  removed: Set<string>;
  searchNote: { root: string | undefined; text: string } | null;
}

interface LoopDef {
  readonly path: string;
  readonly device: GrubDeviceRef | null;
  /** Loopback levels down to a real disk (1 = a file on a disk filesystem). */
  readonly depth: number;
}

function cloneDev(d: DevState): DevState {
  return { loops: new Map(d.loops), removed: new Set(d.removed), searchNote: d.searchNote };
}

interface Frame {
  vars: Vars;
  dev: DevState;
  items: Item[];
  file: FileText;
  sourceDepth: number;
  stopped: boolean;
}

type Tri = true | false | 'unknown';

/** Bootable-kernel commands and what they mean for a Xen PV guest. */
const LINUX_CMDS: ReadonlySet<string> = new Set(['linux', 'linux16', 'linuxefi', 'linux32']);
const INITRD_CMDS: ReadonlySet<string> = new Set(['initrd', 'initrd16', 'initrdefi', 'initrd32']);
const MULTIBOOT_CMDS: ReadonlySet<string> = new Set(['multiboot', 'multiboot2']);
const MODULE_CMDS: ReadonlySet<string> = new Set(['module', 'module2']);
const OTHER_LOADERS: ReadonlySet<string> = new Set([
  'knetbsd', 'kfreebsd', 'kopenbsd', 'chainloader', 'appleloader', 'xnu_kernel', 'xnu_kernel64', 'ntldr', 'freedos', 'truecrypt', 'plan9', 'bsd',
]);

/** GRUB's quoting of one argument when it builds a kernel command line (grub-core/lib/cmdline.c). */
export function grubQuoteArg(v: string): string {
  let out = '';
  for (const c of v) out += c === '\\' || c === "'" || c === '"' ? `\\${c}` : c;
  return v.includes(' ') ? `"${out}"` : out;
}

/**
 * Sets a variable. GRUB's write hook on `root` takes a device name with or without parentheses
 * (`set root='(hd0,gpt2)'` and `set root=hd0,gpt2` are the same); we store it without them so
 * `($root)/vmlinuz` names `(hd0,gpt2)`.
 */
function setVar(vars: Vars, name: string, value: string): void {
  if (name === 'root' && value.startsWith('(') && value.endsWith(')')) value = value.slice(1, -1);
  vars.set(name, value);
}

function lookup(vars: Vars, name: string): string {
  const v = vars.get(name);
  if (v !== undefined) return v;
  if (name.startsWith('feature_')) return 'y';
  if (name === '?') return '0';
  return '';
}

function isWs(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n';
}

/**
 * Expands a word into fields: quoted parts and literals join the current field, an unquoted
 * variable is split on whitespace (GRUB splits unquoted expansions into separate arguments). A word
 * without quotes that expands to nothing disappears.
 */
export function expandFields(w: Word, vars: Vars): string[] {
  const fields: string[] = [];
  let cur = '';
  let has = false;
  for (const seg of w.segments) {
    if (seg.kind === 'lit') {
      cur += seg.text;
      has = true;
      continue;
    }
    const value = lookup(vars, seg.name);
    if (seg.quoted) {
      cur += value;
      has = true;
      continue;
    }
    let i = 0;
    while (i < value.length) {
      if (isWs(value[i]!)) {
        if (has) fields.push(cur);
        cur = '';
        has = false;
        while (i < value.length && isWs(value[i]!)) i++;
        continue;
      }
      cur += value[i]!;
      has = true;
      i++;
    }
  }
  if (has || w.hasQuote) fields.push(cur);
  return fields;
}

function argv(words: readonly Word[], vars: Vars): string[] {
  const out: string[] = [];
  for (const w of words) for (const f of expandFields(w, vars)) out.push(f);
  return out;
}

/** `name=value` as a command (GRUB's assignment without `set`): the first segment is a plain name followed by `=`. */
function assignment(w: Word, vars: Vars): [string, string] | null {
  const first = w.segments[0];
  if (!first || first.kind !== 'lit' || first.quoted) return null;
  const eq = first.text.indexOf('=');
  if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(first.text.slice(0, eq))) return null;
  const rest: Word = { ...w, segments: [{ kind: 'lit', text: first.text.slice(eq + 1), quoted: true }, ...w.segments.slice(1)], hasQuote: true };
  return [first.text.slice(0, eq), expandFields(rest, vars).join(' ')];
}

/**
 * Kernel arguments from the words after the path: the source text is kept for plain words and the
 * whitespace between words is kept as written (pygrub keeps `rd.luks=0  KEYTABLE=uk`), words with
 * quotes or variables are expanded and quoted as GRUB passes them to the kernel. `skip` fields at
 * the start are dropped (the path itself, Xen's `placeholder`).
 */
function argsText(words: readonly Word[], from: number, skip: number, text: string, vars: Vars): string | null {
  let out = '';
  let any = false;
  let lastEnd = -1;
  let toSkip = skip;
  for (let k = from; k < words.length; k++) {
    const w = words[k]!;
    let fields = expandFields(w, vars);
    let raw = w.simple;
    if (toSkip > 0 && fields.length > 0) {
      const n = Math.min(toSkip, fields.length);
      fields = fields.slice(n);
      toSkip -= n;
      raw = false;
    }
    if (fields.length > 0) {
      const piece = raw ? text.slice(w.start, w.end) : fields.map(grubQuoteArg).join(' ');
      if (any) {
        let sep = text.slice(lastEnd, w.start).split('\\\n').join('').split('\r').join('');
        if (sep === '') sep = ' ';
        out += sep;
      }
      out += piece;
      any = true;
    }
    lastEnd = w.end;
  }
  return any ? out : null;
}

/** menuentry/submenu options (GRUB's menuentry.c option table): returns title and id. */
function menuOptions(args: readonly string[]): { title: string | null; id?: string } {
  let title: string | null = null;
  let id: string | undefined;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--class' || a === '--users' || a === '--hotkey' || a === '--source') {
      i++;
    } else if (a === '--id') {
      id = args[i + 1];
      i++;
    } else if (a.startsWith('--id=')) {
      id = a.slice(5);
    } else if (a.startsWith('--')) {
      // --unrestricted, --class=x, --hotkey=x and unknown options take no separate value
    } else if (title === null) {
      title = a;
    }
  }
  return id === undefined ? { title } : { title, id };
}

class Grub2Run {
  readonly limits: Limits;
  readonly fs: ConfigFs | undefined;
  readonly warnings = new Warnings();
  entriesSeen = 0;
  bytesParsed = 0;
  solaris = false;

  constructor(opts: Grub2Options) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.fs = opts.fs;
  }

  parseFile(text: string, path: string): Command[] {
    checkConfigText(text, this.limits, path);
    // Every `source` re-reads its file: a global byte budget stops a file that sources itself
    // (directly or through a chain) from multiplying the work at each level.
    this.bytesParsed += text.length;
    // Twice the one-file cap: real configs source a few small files (Fedora's grub.d snippets,
    // grubenv-driven menus), while a file that re-sources itself N times must not cost N × 1 MiB of
    // lexing and syntax trees (found by the mutation fuzzer: 30,000 `source` lines of itself).
    const budget = this.limits.configBytes * 2;
    if (this.bytesParsed > budget) {
      throw new LimitExceededError('configBytes', `${path}: ${this.bytesParsed} bytes of config parsed through source/configfile`, budget);
    }
    return parseScript(lex(text, path), path, { maxNesting: Math.max(16, this.limits.configDepth * 8), maxMenuDepth: this.limits.configDepth });
  }

  countEntry(where: string): void {
    this.entriesSeen++;
    if (this.entriesSeen > this.limits.menuEntries) {
      throw new LimitExceededError('menuEntries', `${where}: more than ${this.limits.menuEntries} menu entries`, this.limits.menuEntries);
    }
  }

  async readGuestFile(p: string, base: string): Promise<{ path: string; text: string } | null> {
    if (!this.fs) return null;
    const path = toFsPath(p, base);
    if (path === null) return null;
    const text = await this.fs.readText(path);
    return text === null ? null : { path, text };
  }

  async exec(cmds: readonly Command[], f: Frame): Promise<void> {
    for (const cmd of cmds) {
      if (f.stopped) return;
      switch (cmd.t) {
        case 'simple':
          await this.simple(cmd.words, f, cmd.line);
          break;
        case 'if':
          await this.runIf(cmd, f, (body) => this.exec(body, f));
          break;
        case 'menu': {
          const a = argv(cmd.words, f.vars);
          const { title, id } = menuOptions(a);
          if (title === null) {
            this.warnings.add(`${f.file.path}:${cmd.line}: ${cmd.kind} without a title ignored`);
            break;
          }
          if (cmd.kind === 'menuentry') {
            this.countEntry(f.file.path);
            f.items.push({ kind: 'entry', title, ...(id !== undefined ? { id } : {}), cmd, file: f.file });
          } else {
            f.items.push({ kind: 'submenu', title, ...(id !== undefined ? { id } : {}), cmd, file: f.file });
          }
          break;
        }
        default:
          break; // functions are defined, never called; loops are not run
      }
    }
  }

  async runIf(cmd: Extract<Command, { t: 'if' }>, f: Frame, run: (body: readonly Command[]) => Promise<void>): Promise<void> {
    for (const clause of cmd.clauses) {
      const c = await this.cond(clause.cond, f.vars, f.dev);
      if (c !== false) {
        await run(clause.body);
        return;
      }
    }
    if (cmd.otherwise) await run(cmd.otherwise);
  }

  /** Status of the last command of a condition list. */
  async cond(cmds: readonly Command[], vars: Vars, dev?: DevState): Promise<Tri> {
    let status: Tri = true;
    for (const c of cmds) {
      if (c.t !== 'simple') {
        status = 'unknown';
        continue;
      }
      if (c.words.length > 0 && assignment(c.words[0]!, vars)) {
        const [k, v] = assignment(c.words[0]!, vars)!;
        setVar(vars, k, v);
        status = true;
        continue;
      }
      const a = argv(c.words, vars);
      const name = a[0];
      if (name === '[') status = a[a.length - 1] === ']' ? await this.test(a.slice(1, -1), vars) : false;
      else if (name === 'test') status = await this.test(a.slice(1), vars);
      else if (name === 'true') status = true;
      else if (name === 'false') status = false;
      else if (name !== undefined && dev) status = (await this.deviceCommand(name, a.slice(1), vars, dev, `condition`)) ?? 'unknown';
      else status = 'unknown';
    }
    return status;
  }

  /** GRUB's `test` (grub-core/commands/test.c), three-valued: file tests need the ConfigFs. */
  async test(args: readonly string[], vars: Vars): Promise<Tri> {
    let i = 0;
    const not = (v: Tri): Tri => (v === 'unknown' ? v : !v);
    const and = (a: Tri, b: Tri): Tri => (a === false || b === false ? false : a === true && b === true ? true : 'unknown');
    const or = (a: Tri, b: Tri): Tri => (a === true || b === true ? true : a === false && b === false ? false : 'unknown');
    const num = (s: string): number => {
      const n = pythonInt(s);
      return n === null ? 0 : n;
    };
    const fileTest = async (op: string, p: string): Promise<Tri> => {
      if (!this.fs) return 'unknown';
      const path = toFsPath(p, '/');
      if (path === null) return false;
      if (op === '-d') return (await this.fs.list(path)) !== null;
      if (op === '-s') {
        const t = await this.fs.readText(path);
        return t !== null && t.length > 0;
      }
      return this.fs.exists(path);
    };
    const primary = async (): Promise<Tri> => {
      const a = args[i];
      if (a === undefined) return false;
      if (a === '(') {
        i++;
        const v = await orExpr();
        if (args[i] === ')') i++;
        return v;
      }
      const op = args[i + 1];
      if (op !== undefined && i + 2 < args.length + 0 && args[i + 2] !== undefined) {
        const b = args[i + 2]!;
        switch (op) {
          case '=': case '==': i += 3; return a === b;
          case '!=': i += 3; return a !== b;
          case '<': i += 3; return a < b;
          case '>': i += 3; return a > b;
          case '<=': i += 3; return a <= b;
          case '>=': i += 3; return a >= b;
          case '-eq': i += 3; return num(a) === num(b);
          case '-ne': i += 3; return num(a) !== num(b);
          case '-lt': i += 3; return num(a) < num(b);
          case '-le': i += 3; return num(a) <= num(b);
          case '-gt': i += 3; return num(a) > num(b);
          case '-ge': i += 3; return num(a) >= num(b);
          case '-pgt': case '-plt': case '-nt': case '-ot': i += 3; return 'unknown';
          default: break;
        }
      }
      if (op !== undefined) {
        switch (a) {
          case '-n': i += 2; return op !== '';
          case '-z': i += 2; return op === '';
          case '-e': case '-f': case '-d': case '-s': i += 2; return fileTest(a, op);
          default: break;
        }
      }
      i++;
      return a !== '';
    };
    const notExpr = async (): Promise<Tri> => {
      if (args[i] === '!' && i + 1 < args.length) {
        i++;
        return not(await notExpr());
      }
      return primary();
    };
    const andExpr = async (): Promise<Tri> => {
      let v = await notExpr();
      while (args[i] === '-a') {
        i++;
        v = and(v, await notExpr());
      }
      return v;
    };
    const orExpr = async (): Promise<Tri> => {
      let v = await andExpr();
      while (args[i] === '-o') {
        i++;
        v = or(v, await andExpr());
      }
      return v;
    };
    void vars;
    if (args.length === 0) return false;
    return orExpr();
  }

  async simple(words: readonly Word[], f: Frame, line: number): Promise<void> {
    if (words.length === 0) return;
    const asg = assignment(words[0]!, f.vars);
    if (asg) {
      setVar(f.vars, asg[0], asg[1]);
      return;
    }
    const a = argv(words, f.vars);
    const name = a[0];
    switch (name) {
      case 'set':
        for (const x of a.slice(1)) {
          const eq = x.indexOf('=');
          if (eq > 0) setVar(f.vars, x.slice(0, eq), x.slice(eq + 1));
        }
        return;
      case 'unset':
        for (const x of a.slice(1)) f.vars.delete(x);
        return;
      case 'load_env':
        await this.loadEnv(a.slice(1), f);
        return;
      case 'source':
      case '.':
      case 'configfile': {
        const target = a[1];
        if (target === undefined || !this.fs) return;
        if (f.sourceDepth + 1 > this.limits.configDepth) {
          throw new LimitExceededError('configDepth', `${f.file.path}:${line}: ${name} nested deeper than ${this.limits.configDepth}`, this.limits.configDepth);
        }
        const got = await this.readGuestFile(target, lookup(f.vars, 'prefix') || '/');
        if (got === null) {
          this.warnings.add(`${f.file.path}:${line}: ${name} ${target}: not found`);
          return;
        }
        const cmds = this.parseFile(got.text, got.path);
        const inner: Frame = { ...f, file: got, sourceDepth: f.sourceDepth + 1, stopped: false };
        if (name === 'configfile') {
          // configfile replaces the menu built so far with the new file's menu (GRUB opens a new
          // menu and does not come back to this file at boot).
          f.items.length = 0;
          inner.vars.set('config_file', got.path);
          inner.vars.set('config_directory', dirname(got.path));
        }
        await this.exec(cmds, inner);
        if (name === 'configfile') f.stopped = true;
        return;
      }
      case 'blscfg':
        await this.blscfg(f);
        return;
      default:
        if (name !== undefined) await this.deviceCommand(name, a.slice(1), f.vars, f.dev, `${f.file.path}:${line}`);
        return;
    }
  }

  /**
   * `search`, `search.fs_uuid`, `search.fs_label`, `search.file` and `loopback`; returns the
   * command's status, or null when `name` is none of them. GRUB: grub-core/commands/search*.c,
   * grub-core/disk/loopback.c.
   */
  async deviceCommand(name: string, args: readonly string[], vars: Vars, dev: DevState, where: string): Promise<Tri | null> {
    if (name === 'loopback') return this.loopback(args, vars, dev, where);
    let kind: SearchKind | null = null;
    let key: string | undefined;
    let setVarName: string | null = null;
    if (name === 'search.fs_uuid' || name === 'search.fs_label' || name === 'search.file') {
      // search_wrap: NAME [VARIABLE] [HINTS…]; the variable defaults to root.
      kind = name === 'search.fs_uuid' ? 'fs-uuid' : name === 'search.fs_label' ? 'label' : 'file';
      key = args[0];
      setVarName = args[1] ?? 'root';
    } else if (name === 'search') {
      const positional: string[] = [];
      for (let i = 0; i < args.length; i++) {
        const x = args[i]!;
        if (x === '--') {
          positional.push(...args.slice(i + 1));
          break;
        }
        if (x === '--file') kind = 'file';
        else if (x === '--label') kind = 'label';
        else if (x === '--fs-uuid') kind = 'fs-uuid';
        // --set takes its variable only as --set=VAR (an optional argument in GRUB's option table).
        else if (x === '--set') setVarName = 'root';
        else if (x.startsWith('--set=')) setVarName = x.slice(6) || 'root';
        else if (x.startsWith('--hint')) {
          // --hint, --hint-bios, --hint-efi, …: a required argument, attached with `=` or the next word.
          if (!x.includes('=')) i++;
        } else if (x.startsWith('--')) {
          // --no-floppy, --efidisk-only and unknown long options: no argument, nothing to decide.
        } else if (x.startsWith('-') && x.length > 1) {
          for (const c of x.slice(1)) {
            if (c === 'f') kind = 'file';
            else if (c === 'l') kind = 'label';
            else if (c === 'u') kind = 'fs-uuid';
            else if (c === 's') setVarName = 'root';
            else if (c === 'h') i++;
          }
        } else positional.push(x);
      }
      key = positional[0];
    } else return null;
    const resolver: DeviceResolver | undefined = this.fs?.devices;
    if (kind === null || key === undefined) {
      this.warnings.add(`${where}: ${name}: no search type or key`);
      return false;
    }
    if (!resolver) return 'unknown';
    const found = await resolver.search(kind, key);
    if (found === null) {
      const text = `${name} --${kind} ${JSON.stringify(key)} found no device`;
      this.warnings.add(`${where}: ${text}`);
      if (setVarName === 'root') dev.searchNote = { root: vars.get('root'), text };
      return false;
    }
    if (setVarName !== null) setVar(vars, setVarName, found);
    return true;
  }

  /** `loopback [-d] NAME [FILE]`: NAME becomes a disk made of FILE, read on FILE's device or `$root`. */
  loopback(args: readonly string[], vars: Vars, dev: DevState, where: string): Tri {
    const rest = args.filter((x) => x !== '-d' && x !== '--delete');
    const name = rest[0];
    if (name === undefined || name === '' || name.includes(',') || name.includes('(') || name.includes(')')) {
      this.warnings.add(`${where}: loopback: bad device name`);
      return false;
    }
    if (rest.length !== args.length) {
      if (dev.loops.delete(name)) dev.removed.add(name);
      return true;
    }
    const file = rest[1];
    if (file === undefined) {
      this.warnings.add(`${where}: loopback ${name}: no file`);
      return false;
    }
    const d = splitDevice(file);
    const path = toFsPath(d.path, '/');
    if (path === null) {
      this.warnings.add(`${where}: loopback ${name}: no file`);
      return false;
    }
    const device = this.deviceRef(d.device ?? vars.get('root') ?? null, dev);
    const depth = (device ? (dev.loops.get(device.name.split(',')[0]!)?.depth ?? 0) : 0) + 1;
    // GRUB replaces an existing device of the same name; the new definition captured the old one
    // (a file inside the previous loopN), so a chain is a tree built bottom-up and never a cycle.
    dev.loops.set(name, { path, device, depth });
    dev.removed.delete(name);
    return true;
  }

  /**
   * A device name (with or without parentheses) as a GrubDeviceRef: loopback names carry their
   * file. Chains deeper than the configDepth budget are cut (and marked) so they stay small.
   */
  deviceRef(device: string | null, dev: DevState): GrubDeviceRef | null {
    if (device === null) return null;
    let name = device;
    if (name.startsWith('(') && name.endsWith(')')) name = name.slice(1, -1);
    if (name === '') return null;
    const base = name.split(',')[0]!;
    const def = dev.loops.get(base);
    if (!def) return dev.removed.has(base) ? { name, removed: true } : { name };
    if (def.depth > this.limits.configDepth) return { name, tooDeep: true };
    return { name, loop: { path: def.path, device: def.device } };
  }

  async loadEnv(args: readonly string[], f: Frame): Promise<void> {
    let file: string | null = null;
    const names: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const x = args[i]!;
      if (x === '-f' || x === '--file') file = args[++i] ?? null;
      else if (x.startsWith('--file=')) file = x.slice(7);
      else if (x === '-s' || x === '--skip-sig') continue;
      else names.push(x);
    }
    const path = file ?? `${lookup(f.vars, 'prefix') || '/'}/grubenv`;
    const got = await this.readGuestFile(path, '/');
    if (got === null) return;
    checkConfigText(got.text, this.limits, got.path);
    const env = parseGrubenv(got.text);
    for (const [k, v] of env) if (names.length === 0 || names.includes(k)) setVar(f.vars, k, v);
  }

  async blscfg(f: Frame): Promise<void> {
    if (!this.fs) return;
    const loaded = await readBlsDir(this.fs, BLS_DIRS, this.limits, this.warnings);
    if (loaded === null) {
      this.warnings.add(`${f.file.path}: blscfg: no BLS entries directory`);
      return;
    }
    const vars = f.vars;
    for (const e of loaded.entries) {
      this.countEntry(loaded.dir);
      f.items.push({ kind: 'ready', entry: await blsToBootEntry(e, loaded.dir, (n) => lookup(vars, n), this.fs) });
    }
  }

  /** Runs a menuentry body: the loader commands decide kernel, initrd and args. */
  async entry(item: Extract<Item, { kind: 'entry' }>, vars: Vars, dev: DevState, submenu: string[], submenuIds: (string | undefined)[], menuPath: number[]): Promise<BootEntry> {
    const text = item.file.text;
    let kernel: string | null = null;
    let kernelDevice: string | null = null;
    let kernelFrom: GrubDeviceRef | null = null;
    let args: string | null = null;
    let initrd: string[] = [];
    let initrdFrom: (GrubDeviceRef | null)[] = [];
    let hypervisor = false;
    const modules: { path: string; device: string | null; from: GrubDeviceRef | null; args: string | null }[] = [];
    // Where GRUB reads a path from: its own device prefix, else $root as it is when the command runs.
    const fromOf = (device: string | null): GrubDeviceRef | null => this.deviceRef(device ?? vars.get('root') ?? null, dev);
    let other: string | null = null;

    const pathAt = (words: readonly Word[]): { k: number; path: string } | null => {
      // First field after the command that is not an option (`--nounzip`, `--quirk-…`).
      for (let k = 1; k < words.length; k++) {
        const fs = expandFields(words[k]!, vars);
        if (fs.length === 0) continue;
        if (fs[0]!.startsWith('--')) continue;
        return { k, path: fs[0]! };
      }
      return null;
    };

    const run = async (cmds: readonly Command[]): Promise<void> => {
      for (const c of cmds) {
        if (c.t === 'if') {
          await this.runIf(c, { vars, dev } as Frame, run);
          continue;
        }
        if (c.t === 'menu') {
          this.warnings.add(`${item.file.path}:${c.line}: ${c.kind} inside a menuentry ignored`);
          continue;
        }
        if (c.t !== 'simple' || c.words.length === 0) continue;
        const asg = assignment(c.words[0]!, vars);
        if (asg) {
          setVar(vars, asg[0], asg[1]);
          continue;
        }
        const name = expandFields(c.words[0]!, vars)[0];
        if (name === undefined) continue;
        if (name === 'set' || name === 'unset') {
          for (const x of argv(c.words.slice(1), vars)) {
            const eq = x.indexOf('=');
            if (name === 'unset') vars.delete(x);
            else if (eq > 0) setVar(vars, x.slice(0, eq), x.slice(eq + 1));
          }
        } else if (LINUX_CMDS.has(name)) {
          const p = pathAt(c.words);
          if (p === null) continue;
          const d = splitDevice(p.path);
          kernel = d.path;
          kernelDevice = d.device;
          kernelFrom = fromOf(d.device);
          args = argsText(c.words, p.k, 1, text, vars);
          hypervisor = false;
          other = null;
        } else if (INITRD_CMDS.has(name)) {
          const ds = argv(c.words.slice(1), vars).filter((x) => !x.startsWith('--')).map((x) => splitDevice(x));
          initrd = ds.map((d) => d.path);
          initrdFrom = ds.map((d) => fromOf(d.device));
        } else if (MULTIBOOT_CMDS.has(name)) {
          hypervisor = true;
          modules.length = 0;
          kernel = null;
          other = null;
        } else if (MODULE_CMDS.has(name)) {
          const p = pathAt(c.words);
          if (p === null) continue;
          const d = splitDevice(p.path);
          // GRUB's 20_linux_xen puts a `placeholder` word first on module lines (it stands for the
          // image name Xen's older loaders expected); it is not a kernel argument.
          const fields = argv(c.words.slice(p.k), vars);
          const skip = fields[1] === 'placeholder' ? 2 : 1;
          modules.push({ path: d.path, device: d.device, from: fromOf(d.device), args: argsText(c.words, p.k, skip, text, vars) });
        } else if (OTHER_LOADERS.has(name)) {
          other = name;
          kernel = null;
        } else {
          await this.deviceCommand(name, argv(c.words.slice(1), vars), vars, dev, `${item.file.path}:${c.line}`);
        }
      }
    };
    await run(item.cmd.body);

    let unbootable: string | undefined;
    if (hypervisor) {
      // Deliberate difference from pygrub (which cannot boot these): a Xen multiboot entry boots
      // its first module as the PV kernel, with that module's args, and its second as the ramdisk.
      const [k, r] = modules;
      if (k) {
        kernel = k.path;
        kernelDevice = k.device;
        kernelFrom = k.from;
        args = k.args;
        initrd = r ? [r.path] : [];
        initrdFrom = r ? [r.from] : [];
      } else unbootable = 'multiboot entry without modules';
    } else if (kernel === null) {
      unbootable = other !== null ? `${other} entries are not supported` : 'no linux command';
    }
    const root = vars.get('root');
    const body = text.slice(item.cmd.bodyStart, item.cmd.bodyEnd);
    const lines = body.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const note = dev.searchNote;
    const notes = note !== null && note.root === vars.get('root') ? [note.text] : [];
    return {
      title: item.title,
      kernel,
      kernelDevice,
      kernelFrom,
      initrd,
      initrdFrom,
      ...(notes.length ? { deviceNotes: notes } : {}),
      args,
      root: root === undefined || root === '' ? null : root,
      ...(item.id !== undefined ? { id: item.id } : {}),
      submenu,
      submenuIds,
      menuPath,
      lines,
      ...(unbootable !== undefined ? { unbootable } : {}),
      source: item.file.path,
    };
  }

  /** Turns the items of one menu into flat entries, running submenu bodies as GRUB does when opened. */
  async flatten(items: readonly Item[], vars: Vars, dev: DevState, submenu: string[], ids: (string | undefined)[], path: number[], sourceDepth: number, out: BootEntry[]): Promise<void> {
    for (let idx = 0; idx < items.length; idx++) {
      const item = items[idx]!;
      const menuPath = [...path, idx];
      if (item.kind === 'entry') {
        out.push(await this.entry(item, new Map(vars), cloneDev(dev), submenu, ids, menuPath));
      } else if (item.kind === 'ready') {
        out.push({ ...item.entry, submenu, submenuIds: ids, menuPath });
      } else {
        if (submenu.length + 1 > this.limits.configDepth) {
          throw new LimitExceededError('configDepth', `${item.file.path}: submenus nested deeper than ${this.limits.configDepth}`, this.limits.configDepth);
        }
        const f: Frame = { vars: new Map(vars), dev: cloneDev(dev), items: [], file: item.file, sourceDepth, stopped: false };
        await this.exec(item.cmd.body, f);
        await this.flatten(f.items, f.vars, f.dev, [...submenu, item.title], [...ids, item.id], menuPath, sourceDepth, out);
      }
      if (out.length > this.limits.menuEntries) {
        throw new LimitExceededError('menuEntries', `more than ${this.limits.menuEntries} menu entries`, this.limits.menuEntries);
      }
    }
  }
}

/** Parses a grub.cfg. Syntax errors are a ConfigError; limits a LimitExceededError. */
export async function parseGrub2(text: string, opts: Grub2Options): Promise<BootMenu> {
  const run = new Grub2Run(opts);
  const path = opts.configPath;
  const prefix = dirname(path);
  const vars: Vars = new Map([
    ['grub_platform', 'xen'],
    ['grub_cpu', 'x86_64'],
    ['prefix', prefix],
    ['cmdpath', prefix],
    ['config_directory', prefix],
    ['config_file', path],
  ]);
  const file: FileText = { path, text };
  const frame: Frame = { vars, dev: { loops: new Map(), removed: new Set(), searchNote: null }, items: [], file, sourceDepth: 0, stopped: false };
  await run.exec(run.parseFile(text, path), frame);
  const entries: BootEntry[] = [];
  await run.flatten(frame.items, frame.vars, frame.dev, [], [], [], 0, entries);

  let defaultValue = frame.vars.get('default') ?? '';
  if (defaultValue === 'saved') defaultValue = frame.vars.get('saved_entry') ?? '';
  let defaultIndex = 0;
  if (defaultValue !== '') {
    const k = resolveGrubDefault(entries, defaultValue);
    if (k === null) run.warnings.add(`default entry ${JSON.stringify(defaultValue)} not found; using 0`);
    else defaultIndex = k;
  }
  let fallback: number | null = null;
  const fb = frame.vars.get('fallback');
  if (fb !== undefined && fb.trim() !== '') fallback = resolveGrubDefault(entries, fb.trim().split(/[ \t]/)[0]!);

  let timeout: number | null = null;
  const t = frame.vars.get('timeout');
  if (t !== undefined && t !== '') {
    timeout = pythonInt(t);
    if (timeout === null) run.warnings.add(`timeout ${JSON.stringify(t)} is not a number`);
  }
  const style = frame.vars.get('timeout_style');
  if (entries.length === 0) run.warnings.add(`${path}: no menu entries`);
  return {
    format: 'grub2',
    configPath: path,
    entries,
    defaultIndex,
    timeout,
    hidden: style === 'hidden' || style === 'countdown',
    fallback,
    warnings: run.warnings.list,
  };
}

