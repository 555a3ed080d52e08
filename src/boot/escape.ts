/**
 * Escaping guest text before it reaches a terminal (threat-model: a menu title must not be able
 * to move the cursor, set the window title, or reorder what is shown). C0 controls, DEL and C1
 * controls become `\xNN`; Unicode format characters that change the visual order or hide text
 * (bidi embeddings/overrides/isolates, zero-width characters, line/paragraph separators, BOM) and
 * lone surrogates become `\u{XXXX}`. Everything else, including the backslash, is kept, so plain
 * titles print exactly as pygrub prints them.
 */

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function isFormatOrBidi(cp: number): boolean {
  return (
    cp === 0x00ad || // soft hyphen (invisible)
    cp === 0x061c || // Arabic letter mark
    cp === 0x180e ||
    (cp >= 0x200b && cp <= 0x200f) || // zero-width space/joiners, LRM, RLM
    (cp >= 0x2028 && cp <= 0x202e) || // line/paragraph separators, LRE..RLO
    (cp >= 0x2060 && cp <= 0x206f) || // word joiner, invisible operators, LRI..PDI, deprecated formats
    cp === 0xfeff ||
    (cp >= 0xfff9 && cp <= 0xfffb) || // interlinear annotation
    (cp >= 0xd800 && cp <= 0xdfff) // lone surrogate (a paired one never reaches here)
  );
}

export function escapeForTerminal(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp <= 0x9f)) out += `\\x${hex2(cp)}`;
    else if (isFormatOrBidi(cp)) out += `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`;
    else out += ch;
  }
  return out;
}
