/**
 * Syntax tree for GRUB 2 scripts (grub-core/script/parser.y): simple commands, `if`/`elif`/`else`,
 * loops (parsed so their braces and keywords nest correctly, never run), `function` definitions
 * (skipped) and `menuentry`/`submenu` blocks. Recursive descent with an explicit nesting limit so a
 * deep config cannot exhaust the stack.
 */
import { ConfigError, LimitExceededError } from '../../errors.ts';
import type { Token, Word } from './lexer.ts';

export type Command =
  | { readonly t: 'simple'; readonly words: readonly Word[]; readonly line: number }
  | {
      readonly t: 'if';
      readonly clauses: readonly { readonly cond: readonly Command[]; readonly body: readonly Command[] }[];
      readonly otherwise: readonly Command[] | null;
      readonly line: number;
    }
  | { readonly t: 'loop'; readonly line: number }
  | { readonly t: 'function'; readonly line: number }
  | {
      readonly t: 'menu';
      readonly kind: 'menuentry' | 'submenu';
      readonly words: readonly Word[];
      readonly body: readonly Command[];
      /** Span of the text between the braces (for the entry's raw lines). */
      readonly bodyStart: number;
      readonly bodyEnd: number;
      readonly line: number;
    };

/** Plain text of a word that has no quotes, escapes or variables, else null (keywords must be plain). */
export function plainWord(w: Word): string | null {
  if (!w.simple) return null;
  let s = '';
  for (const seg of w.segments) if (seg.kind === 'lit') s += seg.text;
  return s;
}

const RESERVED = new Set(['then', 'elif', 'else', 'fi', 'do', 'done']);

export interface ParseLimits {
  /** Nesting of blocks of any kind (if, loops, functions, menus). */
  readonly maxNesting: number;
  /** Nesting of submenus. */
  readonly maxMenuDepth: number;
}

export function parseScript(tokens: readonly Token[], path: string, lim: ParseLimits): Command[] {
  let pos = 0;
  const fail = (what: string, line: number): never => {
    throw new ConfigError('Grub2Syntax', `${path}: ${what} (line ${line})`);
  };
  const peek = (): Token => tokens[pos]!;

  const keywordAt = (): string | null => {
    const t = peek();
    return t.type === 'word' ? plainWord(t.word) : null;
  };

  /** Parses commands until a keyword in `stops` starts a command (consumed, returned), `}` (not consumed) or EOF. */
  const parseList = (stops: ReadonlySet<string>, inBrace: boolean, depth: number, menuDepth: number): { cmds: Command[]; end: string } => {
    if (depth > lim.maxNesting) {
      throw new LimitExceededError('configDepth', `${path}: blocks nested deeper than ${lim.maxNesting} (line ${peek().line})`, lim.maxNesting);
    }
    const cmds: Command[] = [];
    for (;;) {
      const t = peek();
      if (t.type === 'newline' || t.type === 'semi') {
        pos++;
        continue;
      }
      if (t.type === 'eof') return { cmds, end: 'eof' };
      if (t.type === 'rbrace') {
        if (!inBrace) fail('closing brace without an open block', t.line);
        return { cmds, end: '}' };
      }
      if (t.type === 'lbrace') fail('unexpected {', t.line);
      const kw = keywordAt();
      if (kw !== null && stops.has(kw)) {
        pos++;
        return { cmds, end: kw };
      }
      if (kw !== null && RESERVED.has(kw)) fail(`unexpected ${kw}`, t.line);
      cmds.push(parseCommand(depth, menuDepth));
    }
  };

  const expectEnd = (got: string, want: string, line: number): void => {
    if (got !== want) fail(`expected ${want}, found ${got === 'eof' ? 'end of file' : got}`, line);
  };

  const parseCommand = (depth: number, menuDepth: number): Command => {
    const first = peek();
    const line = first.line;
    const kw = keywordAt();
    if (kw === 'if') {
      pos++;
      const clauses: { cond: Command[]; body: Command[] }[] = [];
      let otherwise: Command[] | null = null;
      for (;;) {
        const cond = parseList(new Set(['then']), false, depth + 1, menuDepth);
        expectEnd(cond.end, 'then', line);
        const body = parseList(new Set(['elif', 'else', 'fi']), false, depth + 1, menuDepth);
        clauses.push({ cond: cond.cmds, body: body.cmds });
        if (body.end === 'elif') continue;
        if (body.end === 'else') {
          const e = parseList(new Set(['fi']), false, depth + 1, menuDepth);
          expectEnd(e.end, 'fi', line);
          otherwise = e.cmds;
        } else expectEnd(body.end, 'fi', line);
        break;
      }
      return { t: 'if', clauses, otherwise, line };
    }
    if (kw === 'while' || kw === 'until' || kw === 'for') {
      pos++;
      const head = parseList(new Set(['do']), false, depth + 1, menuDepth);
      expectEnd(head.end, 'do', line);
      const body = parseList(new Set(['done']), false, depth + 1, menuDepth);
      expectEnd(body.end, 'done', line);
      return { t: 'loop', line };
    }
    if (kw === 'function') {
      pos++;
      if (peek().type !== 'word') fail('function without a name', line);
      pos++;
      while (peek().type === 'newline') pos++;
      if (peek().type !== 'lbrace') fail('function without {', line);
      pos++;
      const body = parseList(new Set(), true, depth + 1, menuDepth);
      expectEnd(body.end, '}', line);
      pos++;
      return { t: 'function', line };
    }
    const words: Word[] = [];
    for (;;) {
      const t = peek();
      if (t.type === 'word') {
        words.push(t.word);
        pos++;
        continue;
      }
      break;
    }
    if (kw === 'menuentry' || kw === 'submenu') {
      const t = peek();
      if (t.type !== 'lbrace') fail(`${kw} without {`, line);
      const nextMenuDepth = kw === 'submenu' ? menuDepth + 1 : menuDepth;
      if (nextMenuDepth > lim.maxMenuDepth) {
        throw new LimitExceededError('configDepth', `${path}: submenus nested deeper than ${lim.maxMenuDepth} (line ${line})`, lim.maxMenuDepth);
      }
      pos++;
      const bodyStart = t.end;
      const body = parseList(new Set(), true, depth + 1, nextMenuDepth);
      expectEnd(body.end, '}', line);
      const close = peek();
      pos++;
      return { t: 'menu', kind: kw, words, body: body.cmds, bodyStart, bodyEnd: close.start, line };
    }
    if (peek().type === 'lbrace') fail('unexpected {', peek().line);
    return { t: 'simple', words, line };
  };

  const top = parseList(new Set(), false, 0, 0);
  return top.cmds;
}
