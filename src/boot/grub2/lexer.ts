/**
 * Lexer for the GRUB 2 script language (GRUB manual, "Shell-like scripting"; grub-core/script/yylex.l).
 * Hand-written and linear: every character is looked at a bounded number of times, there is no
 * backtracking and no regular expression over guest text. Variables are kept as segments so the
 * evaluator expands them later; each word also keeps its source span so kernel arguments can be
 * re-joined from the original text (pygrub keeps internal double spaces, spec §3.10).
 */
import { ConfigError } from '../../errors.ts';

export type Segment =
  | { readonly kind: 'lit'; readonly text: string; readonly quoted: boolean }
  | { readonly kind: 'var'; readonly name: string; readonly quoted: boolean };

export interface Word {
  readonly segments: readonly Segment[];
  /** Source span [start, end) in the file text. */
  readonly start: number;
  readonly end: number;
  /** No quotes, escapes or variables: the source text is the value. */
  readonly simple: boolean;
  /** Contains a quote or escape, so it stays an argument even when it expands to nothing. */
  readonly hasQuote: boolean;
  readonly line: number;
}

export type Token =
  | { readonly type: 'word'; readonly word: Word; readonly start: number; readonly end: number; readonly line: number }
  | { readonly type: 'newline' | 'semi' | 'lbrace' | 'rbrace' | 'eof'; readonly start: number; readonly end: number; readonly line: number };

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
function isNameChar(c: string): boolean {
  return isNameStart(c) || (c >= '0' && c <= '9');
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** Characters that end an unquoted word (GRUB's lexer treats `{`/`}` and `;` as separate tokens). */
function endsWord(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === ';' || c === '{' || c === '}';
}

/** A character that neither ends an unquoted word nor starts a quote, an escape or a variable. */
function isPlainUnquoted(c: number): boolean {
  // space \t \r \n ; { } \ ' " $
  return !(c === 32 || c === 9 || c === 13 || c === 10 || c === 59 || c === 123 || c === 125 || c === 92 || c === 39 || c === 34 || c === 36);
}

export function lex(text: string, path: string): Token[] {
  const tokens: Token[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  const fail = (what: string, at: number): never => {
    throw new ConfigError('Grub2Syntax', `${path}: ${what} (line ${at})`);
  };

  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\\' && text[i + 1] === '\n') {
      // Line continuation between words.
      i += 2;
      line++;
      continue;
    }
    if (c === '\n') {
      tokens.push({ type: 'newline', start: i, end: i + 1, line });
      i++;
      line++;
      continue;
    }
    if (c === ';') {
      tokens.push({ type: 'semi', start: i, end: i + 1, line });
      i++;
      continue;
    }
    if (c === '{' || c === '}') {
      tokens.push({ type: c === '{' ? 'lbrace' : 'rbrace', start: i, end: i + 1, line });
      i++;
      continue;
    }
    if (c === '#') {
      // A comment runs to the end of the line; the newline stays a separator.
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      continue;
    }

    // A word.
    const start = i;
    const startLine = line;
    const segments: Segment[] = [];
    let simple = true;
    let hasQuote = false;
    let lit = '';
    let litQuoted = false;
    const flush = (): void => {
      if (lit !== '') segments.push({ kind: 'lit', text: lit, quoted: litQuoted });
      lit = '';
    };
    const addLit = (s: string, quoted: boolean): void => {
      if (quoted !== litQuoted) {
        flush();
        litQuoted = quoted;
      }
      lit += s;
    };
    // Reads `$name`, `${name}`, `$1`, `$?`, `$#`, `$@`, `$*` at i (text[i] === '$'); returns false when
    // the `$` is literal.
    const readVar = (quoted: boolean): boolean => {
      const d = text[i + 1];
      if (d === '{') {
        const close = text.indexOf('}', i + 2);
        const nl = text.indexOf('\n', i + 2);
        if (close < 0 || (nl >= 0 && nl < close)) fail('unterminated ${', line);
        flush();
        segments.push({ kind: 'var', name: text.slice(i + 2, close), quoted });
        i = close + 1;
        return true;
      }
      if (d !== undefined && (isNameStart(d) || isDigit(d) || d === '?' || d === '#' || d === '@' || d === '*')) {
        let j = i + 1;
        if (isNameStart(d)) while (j < n && isNameChar(text[j]!)) j++;
        else if (isDigit(d)) while (j < n && isDigit(text[j]!)) j++;
        else j++;
        flush();
        segments.push({ kind: 'var', name: text.slice(i + 1, j), quoted });
        i = j;
        return true;
      }
      return false;
    };

    while (i < n && !endsWord(text[i]!)) {
      const ch = text[i]!;
      if (ch === '\\') {
        simple = false;
        hasQuote = true;
        const nx = text[i + 1];
        if (nx === undefined) {
          addLit('\\', false);
          i++;
        } else if (nx === '\n') {
          i += 2;
          line++;
        } else {
          addLit(nx, true);
          i += 2;
        }
      } else if (ch === "'") {
        simple = false;
        hasQuote = true;
        const close = text.indexOf("'", i + 1);
        if (close < 0) fail('unterminated single quote', startLine);
        const body = text.slice(i + 1, close);
        for (let k = 0; k < body.length; k++) if (body.charCodeAt(k) === 10) line++;
        addLit(body, true);
        i = close + 1;
      } else if (ch === '"') {
        simple = false;
        hasQuote = true;
        i++;
        let closed = false;
        while (i < n) {
          const q = text[i]!;
          if (q === '"') {
            closed = true;
            i++;
            break;
          }
          if (q === '\\') {
            const nx = text[i + 1];
            if (nx === '\n') {
              i += 2;
              line++;
            } else if (nx === '"' || nx === '\\' || nx === '$') {
              addLit(nx, true);
              i += 2;
            } else {
              addLit('\\', true);
              i++;
            }
          } else if (q === '$') {
            if (!readVar(true)) {
              addLit('$', true);
              i++;
            }
          } else {
            // A run of ordinary characters, taken whole.
            let j = i;
            while (j < n) {
              const d = text.charCodeAt(j);
              if (d === 34 || d === 92 || d === 36) break; // " \ $
              if (d === 10) line++;
              j++;
            }
            addLit(text.slice(i, j), true);
            i = j;
          }
        }
        if (!closed) fail('unterminated double quote', startLine);
      } else if (ch === '$') {
        simple = false;
        if (!readVar(false)) {
          addLit('$', false);
          i++;
        }
      } else {
        // A run of ordinary characters, taken whole.
        let j = i + 1;
        while (j < n && isPlainUnquoted(text.charCodeAt(j))) j++;
        addLit(text.slice(i, j), false);
        i = j;
      }
    }
    flush();
    const word: Word = { segments, start, end: i, simple, hasQuote, line: startLine };
    tokens.push({ type: 'word', word, start, end: i, line: startLine });
  }
  tokens.push({ type: 'eof', start: n, end: n, line });
  return tokens;
}
