/** GRUB 2 parser on hand-written and hostile configs: limits, scoping, conditionals, defaults, grubenv. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGrub2 } from '../../src/boot/grub2/parser.ts';
import { resolveEntry } from '../../src/boot/select.ts';
import { listEntries } from '../../src/boot/list.ts';
import { escapeForTerminal } from '../../src/boot/escape.ts';
import { resolveLimits } from '../../src/limits.ts';
import { memFs } from './memfs.ts';

const P = '/boot/grub/grub.cfg';
const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? 'untyped';
  }
};

test('64 KiB menuentry line of unbalanced quotes is rejected in linear time', async () => {
  for (const unit of [`' `, `" `, `\\" `]) {
    const line = 'menuentry "' + unit.repeat(Math.floor((64 * 1024 - 20) / unit.length));
    const t0 = performance.now();
    const c = await code(parseGrub2(line + '\n', { configPath: P }));
    assert.ok(performance.now() - t0 < 1000);
    assert.ok(c === 'Config' || c === 'ok', c);
  }
  const tooLong = 'menuentry "x" {\n linux /k ' + 'a'.repeat(70_000) + '\n}\n';
  assert.equal(await code(parseGrub2(tooLong, { configPath: P })), 'Config');
});

test('1 MiB config parses; one byte more is LimitExceeded', async () => {
  const entry = "menuentry 'e' {\n linux /vmlinuz root=/dev/xvda1\n}\n";
  const body = 'set foo=bar # ' + 'x'.repeat(60) + '\n';
  const n = Math.floor(((1 << 20) - 500) / body.length);
  let text = entry.repeat(3) + body.repeat(n);
  text += '#'.repeat((1 << 20) - text.length);
  assert.equal(text.length, 1 << 20);
  const t0 = performance.now();
  const m = await parseGrub2(text, { configPath: P });
  assert.ok(performance.now() - t0 < 3000);
  assert.equal(m.entries.length, 3);
  const e = await parseGrub2(text + '#', { configPath: P }).catch((x) => x);
  assert.equal(e.code, 'LimitExceeded');
  assert.equal(e.data.limit, 'configBytes');
});

test('100,000 menuentries are bounded (config bytes, then menu entries)', async () => {
  const many = "menuentry a {\n}\n".repeat(100_000);
  assert.equal((await parseGrub2(many, { configPath: P }).catch((x) => x)).data.limit, 'configBytes');
  const e = await parseGrub2("menuentry a {\n}\n".repeat(50_000), { configPath: P }).catch((x) => x);
  assert.equal(e.code, 'LimitExceeded');
  assert.equal(e.data.limit, 'menuEntries');
  const ok = await parseGrub2("menuentry a {\nlinux /k\n}\n".repeat(1024), { configPath: P });
  assert.equal(ok.entries.length, 1024);
});

test('1000-deep nested submenus are bounded by configDepth', async () => {
  const text = "submenu s {\n".repeat(1000) + "menuentry a { linux /k }\n" + "}\n".repeat(1000);
  const e = await parseGrub2(text, { configPath: P }).catch((x) => x);
  assert.equal(e.code, 'LimitExceeded');
  assert.equal(e.data.limit, 'configDepth');
  const fine = "submenu s {\n".repeat(8) + "menuentry a { linux /k }\n" + "}\n".repeat(8);
  const m = await parseGrub2(fine, { configPath: P });
  assert.equal(m.entries[0]!.submenu!.length, 8);
  const ifs = 'if true; then\n'.repeat(1000) + 'fi\n'.repeat(1000);
  assert.equal((await parseGrub2(ifs, { configPath: P }).catch((x) => x)).code, 'LimitExceeded');
});

test('__proto__ / constructor as variable names and BLS keys leave Object.prototype alone', async () => {
  const text = `set __proto__=x\nset constructor=y\n__proto__=z\nset hasOwnProperty=1\nmenuentry "$__proto__-$constructor" { linux /k $__proto__ }\n`;
  const fs = memFs({ '/loader/entries/a.conf': 'title t\n__proto__ polluted\nconstructor x\nlinux /v\n' });
  const m = await parseGrub2(text + 'blscfg\n', { configPath: P, fs });
  assert.equal(m.entries[0]!.title, 'z-y');
  assert.equal(m.entries[0]!.args, 'z');
  assert.equal(m.entries[1]!.kernel, '/v');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call({}, '__proto__'), false);
  assert.equal(typeof ({}).constructor, 'function');
});

test('titles with ESC/OSC/CSI/NUL are escaped in the listing', async () => {
  const title = 'a\x1b]0;owned\x07b\x1b[2Jc\x00d\u202eevil\x9b';
  const m = await parseGrub2(`menuentry "${title}" { linux /k }\n`, { configPath: P });
  assert.equal(m.entries[0]!.title, title);
  const out = listEntries(m);
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202e]/.test(out));
  assert.ok(out.startsWith('title: a\\x1B]0;owned\\x07b\\x1B[2Jc\\x00d\\u{202E}evil\\x9B\n'));
  assert.equal(escapeForTerminal('plain \\ title'), 'plain \\ title');
});

test('default: huge, negative, non-numeric, title, id, submenu paths, saved_entry', async () => {
  const base = `
menuentry 'A' --id a { linux /a }
submenu 'Advanced' --id adv {
  menuentry 'B' --id b { linux /b }
  menuentry 'C' --id c { linux /c }
}
menuentry 'D' { linux /d }
`;
  const def = async (v: string, env?: string) => {
    const fs = env ? memFs({ '/boot/grub/grubenv': env }) : undefined;
    const head = env ? 'load_env\n' : '';
    return (await parseGrub2(head + `set default="${v}"\n` + base, { configPath: P, ...(fs ? { fs } : {}) })).defaultIndex;
  };
  assert.equal(await def('0'), 0);
  assert.equal(await def('1'), 1); // top-level item 1 is the submenu: its first entry
  assert.equal(await def('2'), 3); // GRUB counts the submenu as one item
  assert.equal(await def('1>1'), 2);
  assert.equal(await def('Advanced>C'), 2);
  assert.equal(await def('adv>c'), 2);
  assert.equal(await def('D'), 3);
  assert.equal(await def('b'), 0); // not a top-level item
  assert.equal(await def('99999999999999999999999'), 0);
  assert.equal(await def('-1'), 0);
  assert.equal(await def('nonsense'), 0);
  assert.equal(await def('${saved_entry}', '# GRUB Environment Block\nsaved_entry=Advanced>C\n####'), 2);
  assert.equal(await def('saved', '# GRUB Environment Block\nsaved_entry=D\n'), 3);
  const m = await parseGrub2(base, { configPath: P });
  assert.equal(resolveEntry(m, '1'), 1); // --entry keeps pygrub's flattened index
});

test('if/elif/else evaluated with the documented platform assumptions', async () => {
  const text = `
if [ "\${grub_platform}" = "efi" ]; then set k=/efi; elif [ x$feature_menuentry_id = xy ]; then set k=/feat; else set k=/else; fi
if [ -n "$unset" ]; then set a=1; else set a=2; fi
if [ -z "$unset" -a "$grub_cpu" == x86_64 ]; then set b=ok; fi
if test ! a = a; then set c=bad; else set c=good; fi
if loadfont unicode; then set d=first; else set d=second; fi
if false; then set e=no; fi
menuentry t { linux $k $a $b $c $d x$e }
`;
  const m = await parseGrub2(text, { configPath: P });
  assert.equal(m.entries[0]!.kernel, '/feat');
  assert.equal(m.entries[0]!.args, '2 ok good first x');
});

test('variables: scoping per entry, quoting, field splitting, device prefixes', async () => {
  const text = `
set root='hd0,gpt2'
set opts="quiet splash"
menuentry "one" {
  set root=(hd1,msdos3)
  linux ($root)/vmlinuz $opts "acpi_osi=!Windows 2012"  x=1\\
 y=2
  initrd (hd0,1)/initrd.img /extra.img
}
menuentry 'two' { linux /vmlinuz rd.luks=0  KEYTABLE=uk   }
`;
  const m = await parseGrub2(text, { configPath: P });
  const [a, b] = m.entries;
  assert.equal(a!.kernel, '/vmlinuz');
  assert.equal(a!.kernelDevice, '(hd1,msdos3)');
  assert.equal(a!.args, 'quiet splash "acpi_osi=!Windows 2012"  x=1 y=2');
  assert.deepEqual(a!.initrd, ['/initrd.img', '/extra.img']);
  assert.equal(a!.root, 'hd1,msdos3');
  assert.equal(b!.root, 'hd0,gpt2'); // the entry's set root did not leak
  assert.equal(b!.args, 'rd.luks=0  KEYTABLE=uk');
  assert.equal(b!.kernelDevice, null);
});

test('source loop stops at configDepth; configfile and source follow the ConfigFs', async () => {
  const loop = memFs({ [P]: 'source /boot/grub/grub.cfg\n' });
  const e = await parseGrub2('source $prefix/grub.cfg\n', { configPath: P, fs: loop }).catch((x) => x);
  assert.equal(e.code, 'LimitExceeded');
  assert.equal(e.data.limit, 'configDepth');
  const fs = memFs({
    '/boot/grub/extra.cfg': "menuentry extra { linux /x }\nset timeout=7\n",
    '/real/grub.cfg': "menuentry real { linux /r }\n",
  });
  const m = await parseGrub2("menuentry first { linux /f }\nsource ${prefix}/extra.cfg\n", { configPath: P, fs });
  assert.deepEqual(m.entries.map((x) => x.title), ['first', 'extra']);
  assert.equal(m.timeout, 7);
  const c = await parseGrub2("menuentry stub { linux /s }\nconfigfile (hd0,1)/real/grub.cfg\nmenuentry after { linux /a }\n", { configPath: P, fs });
  assert.deepEqual(c.entries.map((x) => x.title), ['real']);
  const wide = memFs({ [P]: 'source /boot/grub/grub.cfg\n'.repeat(50) });
  const w = await parseGrub2('source /boot/grub/grub.cfg\n', { configPath: P, fs: wide, limits: resolveLimits({ configBytes: 4096 }) }).catch((x) => x);
  assert.equal(w.code, 'LimitExceeded');
});

test('multiboot2, linuxefi, knetbsd, functions, loops, timeout_style, syntax errors', async () => {
  const text = `
function f { if true; then if [ a ]; then echo; fi; fi
}
for x in a b; do echo $x; done
set timeout_style=hidden
set timeout=3
menuentry xen { multiboot2 /xen.gz dom0_mem=1G
  module2 /vmlinuz placeholder root=/dev/xvda1 ro
  module2 --nounzip /initrd.img }
menuentry efi { linuxefi /vmlinuz ro; initrdefi /initrd }
menuentry bsd { knetbsd /netbsd }
`;
  const m = await parseGrub2(text, { configPath: P });
  assert.equal(m.hidden, true);
  assert.equal(m.timeout, 3);
  assert.deepEqual([m.entries[0]!.kernel, m.entries[0]!.args, m.entries[0]!.initrd], ['/vmlinuz', 'root=/dev/xvda1 ro', ['/initrd.img']]);
  assert.deepEqual([m.entries[1]!.kernel, m.entries[1]!.args, m.entries[1]!.initrd], ['/vmlinuz', 'ro', ['/initrd']]);
  assert.equal(m.entries[2]!.kernel, null);
  assert.match(m.entries[2]!.unbootable!, /knetbsd/);
  for (const bad of ['}\n', 'menuentry x\n{ linux /k }\n', 'if true; then\n', 'menuentry "x { linux /k }\n', 'fi\n']) {
    assert.equal(await code(parseGrub2(bad, { configPath: P })), 'Config', JSON.stringify(bad));
  }
});
