/**
 * The public API surface, as TypeScript sees it: every name exported by the package entries with
 * its kind and shape (parameter names of functions, member names of classes and interfaces), and
 * the semver rule that decides which version bump a change needs.
 */
import ts from 'typescript';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.ts';

export const ENTRIES: Record<string, string> = {
  '.': 'src/index.ts',
  './browser': 'src/browser/index.ts',
  './node': 'src/node/index.ts',
};

function members(checker: ts.TypeChecker, type: ts.Type): string[] {
  return checker
    .getPropertiesOfType(type)
    .filter((p) => !p.name.startsWith('#') && !p.name.startsWith('__') && !(p.valueDeclaration && ts.getCombinedModifierFlags(p.valueDeclaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)))
    .map((p) => `${p.name}${p.flags & ts.SymbolFlags.Optional ? '?' : ''}`)
    .sort();
}

function params(sig: ts.Signature): string {
  return sig.parameters
    .map((p) => {
      const d = p.valueDeclaration;
      const optional = d && ts.isParameter(d) && (d.questionToken || d.initializer) ? '?' : '';
      const rest = d && ts.isParameter(d) && d.dotDotDotToken ? '...' : '';
      return `${rest}${p.name}${optional}`;
    })
    .join(', ');
}

/** One line per exported name, sorted: "function openDisk(input, options?)", "interface Limits { … }". */
export function surfaceOf(entry: string, program: ts.Program): string[] {
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(join(ROOT, entry));
  if (!sf) throw new Error(`${entry} not in program`);
  const mod = checker.getSymbolAtLocation(sf);
  if (!mod) throw new Error(`${entry} has no exports`);
  const out: string[] = [];
  for (const exp of checker.getExportsOfModule(mod)) {
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    const name = exp.name;
    const f = sym.flags;
    if (f & ts.SymbolFlags.Class) {
      const inst = checker.getDeclaredTypeOfSymbol(sym);
      const stat = checker.getTypeOfSymbol(sym);
      const ctor = stat.getConstructSignatures()[0];
      const statics = members(checker, stat).filter((m) => m !== 'prototype');
      out.push(`class ${name}(${ctor ? params(ctor) : ''}) { ${members(checker, inst).join(', ')} } static { ${statics.join(', ')} }`);
    } else if (f & ts.SymbolFlags.Function) {
      const sigs = checker.getTypeOfSymbol(sym).getCallSignatures();
      out.push(`function ${name}${sigs.map((s) => `(${params(s)})`).join(' | ')}`);
    } else if (f & ts.SymbolFlags.Variable) {
      out.push(`const ${name}`);
    } else if (f & ts.SymbolFlags.Interface) {
      out.push(`interface ${name} { ${members(checker, checker.getDeclaredTypeOfSymbol(sym)).join(', ')} }`);
    } else if (f & ts.SymbolFlags.TypeAlias) {
      out.push(`type ${name}`);
    } else {
      out.push(`other ${name}`);
    }
  }
  return out.sort();
}

export function currentSurface(): Record<string, string[]> {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (!config) throw new Error('tsconfig.json unreadable');
  const program = ts.createProgram({ rootNames: Object.values(ENTRIES).map((e) => join(ROOT, e)), options: { ...config.options, noEmit: true } });
  const out: Record<string, string[]> = {};
  for (const [k, e] of Object.entries(ENTRIES)) out[k] = surfaceOf(e, program);
  return out;
}

export type Bump = 'none' | 'patch' | 'minor' | 'major';

export interface SurfaceDiff {
  readonly added: string[];
  readonly removed: string[];
}

export function diffSurface(before: Record<string, string[]>, after: Record<string, string[]>): SurfaceDiff {
  const flat = (s: Record<string, string[]>) => new Set(Object.entries(s).flatMap(([k, v]) => v.map((x) => `${k}: ${x}`)));
  const a = flat(before);
  const b = flat(after);
  return { added: [...b].filter((x) => !a.has(x)), removed: [...a].filter((x) => !b.has(x)) };
}

/** A removed or changed line breaks callers (major); only additions are a minor change. */
export function requiredBump(d: SurfaceDiff): Bump {
  if (d.removed.length > 0) return 'major';
  if (d.added.length > 0) return 'minor';
  return 'none';
}

function parse(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m) throw new Error(`bad version ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/**
 * Whether going from `from` to `to` is at least `need`. Below 1.0.0, semver (§4) promises nothing,
 * so we use the common convention: a breaking change bumps the minor, an addition the patch.
 */
export function bumpSatisfies(from: string, to: string, need: Bump): boolean {
  const [a0, a1, a2] = parse(from);
  const [b0, b1, b2] = parse(to);
  const cmp = b0 !== a0 ? b0 - a0 : b1 !== a1 ? b1 - a1 : b2 - a2;
  if (need === 'none') return cmp >= 0;
  if (cmp <= 0) return false;
  const major = b0 > a0;
  const minor = major || b1 > a1;
  if (a0 === 0 && b0 === 0) return need === 'major' ? minor : true;
  return need === 'major' ? major : need === 'minor' ? minor : true;
}
