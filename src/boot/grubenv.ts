/**
 * GRUB environment block (`grubenv`, grub-core/lib/envblk.c): a 1 KiB text file starting with
 * `# GRUB Environment Block`, then `name=value` lines, padded with `#`. In values, a backslash
 * escapes the next character (GRUB writes `\\` and `\<newline>`). Parsed into a Map; never written.
 */

export function parseGrubenv(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  let i = 0;
  const n = text.length;
  while (i < n) {
    // One logical line: escaped newlines belong to the value.
    let key = '';
    let value = '';
    let inValue = false;
    const lineStart = i;
    let comment = text[i] === '#';
    while (i < n) {
      const c = text[i]!;
      if (c === '\n') {
        i++;
        break;
      }
      if (comment) {
        i++;
        continue;
      }
      if (inValue) {
        if (c === '\\' && i + 1 < n) {
          value += text[i + 1]!;
          i += 2;
          continue;
        }
        value += c;
      } else if (c === '=') {
        inValue = true;
      } else {
        key += c;
      }
      i++;
    }
    if (i === lineStart) i++;
    if (!comment && inValue && key !== '') vars.set(key, value);
    comment = false;
  }
  return vars;
}
