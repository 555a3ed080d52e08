/**
 * A bounded parser of LVM2's text metadata grammar (lib/config/config.c, "Text Format Volume
 * Group"): `name { … }` sections, `key = value`, values are strings with backslash escapes,
 * integers, floats or `[ … ]` arrays of those; `#` comments. Iterative (explicit stack), with depth,
 * token-length and entry-count limits. Never evaluated; keys live in Maps, so `__proto__` or
 * `constructor` are ordinary names.
 */
import { CorruptError, LimitExceededError } from '../errors.ts';

export type ConfigValue = string | number | ConfigValue[];

export class ConfigSection {
  readonly entries = new Map<string, ConfigValue | ConfigSection>();
  constructor(readonly name: string) {}

  section(key: string): ConfigSection | null {
    const v = this.entries.get(key);
    return v instanceof ConfigSection ? v : null;
  }
  sections(): ConfigSection[] {
    return [...this.entries.values()].filter((v): v is ConfigSection => v instanceof ConfigSection);
  }
  string(key: string): string | null {
    const v = this.entries.get(key);
    return typeof v === 'string' ? v : null;
  }
  number(key: string): number | null {
    const v = this.entries.get(key);
    return typeof v === 'number' ? v : null;
  }
  array(key: string): ConfigValue[] | null {
    const v = this.entries.get(key);
    return Array.isArray(v) ? v : null;
  }
}

export interface ConfigLimits {
  /** Section nesting (LVM metadata uses 4 levels). */
  readonly maxDepth: number;
  /** Longest string, name or number token. */
  readonly maxToken: number;
  /** Total keys, sections and array items. */
  readonly maxEntries: number;
}

export const DEFAULT_CONFIG_LIMITS: ConfigLimits = Object.freeze({ maxDepth: 16, maxToken: 64 * 1024, maxEntries: 200_000 });

const W = 'lvm.Metadata';

function isNameChar(c: string): boolean {
  return /[A-Za-z0-9_+.\-]/.test(c);
}

export function parseConfig(text: string, limits: ConfigLimits = DEFAULT_CONFIG_LIMITS): ConfigSection {
  const root = new ConfigSection('');
  const stack: ConfigSection[] = [root];
  let i = 0;
  let entries = 0;
  const n = text.length;

  const fail = (detail: string): never => {
    throw new CorruptError(W, `${detail} (text offset ${i})`);
  };
  const count = (): void => {
    if (++entries > limits.maxEntries) throw new LimitExceededError('lvmMetadataEntries', `more than ${limits.maxEntries} entries`, limits.maxEntries);
  };
  const skipSpace = (): void => {
    while (i < n) {
      const c = text[i] as string;
      if (c === '#') {
        while (i < n && text[i] !== '\n') i++;
      } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const name = (): string => {
    const start = i;
    while (i < n && isNameChar(text[i] as string)) {
      i++;
      if (i - start > limits.maxToken) throw new LimitExceededError('lvmMetadataToken', 'name too long', limits.maxToken);
    }
    if (i === start) fail(`expected a name, found ${JSON.stringify(text[i] ?? 'end of text')}`);
    return text.slice(start, i);
  };
  const quoted = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text[i++] as string;
      if (c === '"') return out;
      if (c === '\\') {
        if (i >= n) fail('unterminated escape');
        out += text[i++] as string; // LVM escapes only '"' and '\\': the next character stands for itself
      } else out += c;
      if (out.length > limits.maxToken) throw new LimitExceededError('lvmMetadataToken', 'string too long', limits.maxToken);
    }
  };
  const scalar = (): string | number => {
    if (text[i] === '"') return quoted();
    const start = i;
    while (i < n && /[0-9+\-.eE]/.test(text[i] as string)) {
      i++;
      if (i - start > 64) fail('number too long');
    }
    const tok = text.slice(start, i);
    if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(tok)) fail(`bad value ${JSON.stringify(tok || (text[i] ?? ''))}`);
    const v = Number(tok);
    if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v))) fail(`number ${tok} out of range`);
    return v;
  };
  const value = (): ConfigValue => {
    if (text[i] !== '[') return scalar();
    i++;
    const arr: ConfigValue[] = [];
    for (;;) {
      skipSpace();
      if (i >= n) fail('unterminated array');
      if (text[i] === ']') {
        i++;
        return arr;
      }
      if (text[i] === '[') fail('nested arrays are not part of the grammar');
      count();
      arr.push(scalar());
      skipSpace();
      if (text[i] === ',') i++;
      else if (text[i] !== ']') fail('expected , or ] in array');
    }
  };

  for (;;) {
    skipSpace();
    const top = stack[stack.length - 1] as ConfigSection;
    if (i >= n) {
      if (stack.length !== 1) fail(`section ${JSON.stringify(top.name)} is not closed`);
      return root;
    }
    if (text[i] === '}') {
      if (stack.length === 1) fail('unbalanced }');
      stack.pop();
      i++;
      continue;
    }
    const key = name();
    skipSpace();
    count();
    if (top.entries.has(key)) fail(`duplicate key ${JSON.stringify(key)} in ${JSON.stringify(top.name)}`);
    if (text[i] === '{') {
      i++;
      if (stack.length > limits.maxDepth) throw new LimitExceededError('lvmMetadataDepth', `sections nested deeper than ${limits.maxDepth}`, limits.maxDepth);
      const s = new ConfigSection(key);
      top.entries.set(key, s);
      stack.push(s);
    } else if (text[i] === '=') {
      i++;
      skipSpace();
      top.entries.set(key, value());
    } else {
      fail(`expected = or { after ${JSON.stringify(key)}`);
    }
  }
}
