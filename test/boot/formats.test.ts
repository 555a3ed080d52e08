/** GRUB legacy, extlinux, LILO, BLS, discovery order and pygrub's --entry semantics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGrubLegacy } from '../../src/boot/grub-legacy.ts';
import { parseExtlinux } from '../../src/boot/extlinux.ts';
import { parseLilo } from '../../src/boot/lilo.ts';
import { compareVersions } from '../../src/boot/bls.ts';
import { findBootConfig } from '../../src/boot/discover.ts';
import { buildArgs, resolveEntry } from '../../src/boot/select.ts';
import { checkConfigText, pythonInt } from '../../src/boot/text.ts';
import { resolveLimits } from '../../src/limits.ts';
import { listEntries } from '../../src/boot/list.ts';
import { memFs } from './memfs.ts';

test('GRUB legacy: = splitting, (hd) prefixes, Xen modules, tabs, password, bad defaults', () => {
  const m = parseGrubLegacy(
    `default=1\ntimeout 5\nhiddenmenu\npassword --md5 $1$x\n` +
      `title Linux\n\troot (hd0,0)\n\tkernel (hd0,0)/vmlinuz ro  quiet\n\tinitrd /initrd.img\n` +
      `title Xen\n\troot (hd0,1)\n\tkernel /xen.gz dom0_mem=512M\n\tmodule /vmlinuz-xen root=/dev/sda1 ro\n\tmodule /initrd-xen\n` +
      `title Tabbed\n\tkernel=/vmlinuz\tconsole=hvc0\n`,
    { configPath: '/boot/grub/menu.lst' },
  );
  assert.equal(m.defaultIndex, 1);
  assert.equal(m.timeout, 5);
  assert.equal(m.hidden, true);
  assert.equal(m.password, true);
  assert.deepEqual([m.entries[0]!.kernel, m.entries[0]!.args, m.entries[0]!.initrd], ['/vmlinuz', 'ro  quiet', ['/initrd.img']]);
  assert.deepEqual([m.entries[1]!.kernel, m.entries[1]!.args, m.entries[1]!.initrd], ['/vmlinuz-xen', 'root=/dev/sda1 ro', ['/initrd-xen']]);
  assert.deepEqual([m.entries[2]!.kernel, m.entries[2]!.args], ['/vmlinuz', 'console=hvc0']);
  assert.match(listEntries(m), /title: Linux\n {2}root: d0p0\n/);
  for (const d of ['-1', '99999999999999999999', 'abc', 'saved']) {
    assert.equal(parseGrubLegacy(`default ${d}\ntitle a\nkernel /k\ntitle b\nkernel /k2\n`, { configPath: 'm' }).defaultIndex, 0, d);
  }
});

test('GRUB legacy Solaris extensions', () => {
  const m = parseGrubLegacy(
    `title OpenSolaris\nfindroot (pool_rpool,0,a)\nbootfs rpool/ROOT/os\nkernel$ /platform/i86pc/kernel/$ISADIR/unix -B $ZFS-BOOTFS\nmodule$ /platform/i86pc/$ISADIR/boot_archive\n`,
    { configPath: '/boot/grub/menu.lst' },
  );
  assert.equal(m.format, 'solaris');
  const e = m.entries[0]!;
  assert.equal(e.kernel, '/platform/i86pc/kernel/amd64/unix');
  assert.equal(e.args, '-B $ZFS-BOOTFS');
  assert.deepEqual(e.initrd, ['/platform/i86pc/amd64/boot_archive']);
  assert.equal(e.bootfs, 'rpool/ROOT/os');
});

const ALPINE = `DEFAULT menu.c32\nPROMPT 0\nTIMEOUT 30\nLABEL grsec\n  MENU DEFAULT\n  MENU LABEL Linux\n  KERNEL vmlinuz-g\n  APPEND initrd=initramfs-g root=/dev/xvda1 quiet\n`;

test('extlinux: relative paths from the root, then from the config directory', async () => {
  const atRoot = await parseExtlinux(ALPINE, { configPath: '/extlinux.conf', fs: memFs({ '/vmlinuz-g': '', '/initramfs-g': '' }) });
  assert.deepEqual([atRoot.entries[0]!.kernel, atRoot.entries[0]!.initrd], ['/vmlinuz-g', ['/initramfs-g']]);
  const inBoot = await parseExtlinux(ALPINE, { configPath: '/boot/extlinux.conf', fs: memFs({ '/boot/vmlinuz-g': '', '/boot/initramfs-g': '' }) });
  assert.deepEqual([inBoot.entries[0]!.kernel, inBoot.entries[0]!.initrd], ['/boot/vmlinuz-g', ['/boot/initramfs-g']]);
  assert.equal(inBoot.timeout, 30);
  assert.equal(inBoot.entries[0]!.args, 'root=/dev/xvda1 quiet');
});

test('extlinux: LINUX/INITRD, comma initrds, case, DEFAULT, INCLUDE loop, mboot.c32', async () => {
  const fs = memFs({ '/boot/syslinux/more.cfg': 'label two\nlinux /v2\ninitrd /a.img,/b.img\nappend ro\n', '/loop.cfg': 'include /loop.cfg\n' });
  const m = await parseExtlinux('default two\ninclude more.cfg\nLaBeL one\nKeRnEl /v1 x\n', { configPath: '/boot/syslinux/syslinux.cfg', fs });
  assert.deepEqual(m.entries.map((e) => e.title), ['two', 'one']);
  assert.equal(m.defaultIndex, 0);
  assert.deepEqual(m.entries[0]!.initrd, ['/a.img', '/b.img']);
  assert.deepEqual([m.entries[1]!.kernel, m.entries[1]!.args], ['/v1', 'x']);
  const loop = await parseExtlinux('include /loop.cfg\n', { configPath: '/x.cfg', fs }).catch((e) => e);
  assert.equal(loop.data.limit, 'configDepth');
  const x = await parseExtlinux('label xen\nkernel mboot.c32\nappend /xen.gz dom0_mem=1G --- /vmlinuz root=/dev/xvda1 ro --- /initrd.img\n', { configPath: '/extlinux.conf' });
  assert.deepEqual([x.entries[0]!.kernel, x.entries[0]!.args, x.entries[0]!.initrd], ['/vmlinuz', 'root=/dev/xvda1 ro', ['/initrd.img']]);
  const c = await parseExtlinux('label hd\ncom32 chain.c32\n', { configPath: '/extlinux.conf' });
  assert.equal(c.entries[0]!.kernel, null);
});

test('LILO', () => {
  const m = parseLilo('default=old\ntimeout=50\nread-only\nimage=/boot/vmlinuz\n  label=linux\n  root=/dev/xvda1\n  append="quiet splash"\n  initrd=/boot/initrd\nimage=/boot/vmlinuz.old\n  label=old\nother=/dev/sda2\n  label=win\n', { configPath: '/etc/lilo.conf' });
  assert.equal(m.defaultIndex, 1);
  assert.equal(m.timeout, 5);
  assert.deepEqual([m.entries[0]!.kernel, m.entries[0]!.args, m.entries[0]!.initrd], ['/boot/vmlinuz', 'quiet splash root=/dev/xvda1 ro', ['/boot/initrd']]);
  assert.equal(m.entries[1]!.args, 'ro');
  assert.equal(m.entries[2]!.kernel, null);
});

test('BLS: ordering, $kernelopts, saved_entry, /boot prefix', async () => {
  assert.ok(compareVersions('5.10.0-1', '5.9.2-3') > 0);
  assert.ok(compareVersions('6.1.0-rc1', '6.1.0-10') < 0);
  const fs = memFs({
    '/boot/loader/entries/a-5.9.conf': 'title Old\nversion 5.9.0-1\nlinux /vmlinuz-5.9\ninitrd /initramfs-5.9.img\noptions $kernelopts\n',
    '/boot/loader/entries/a-5.10.conf': 'title New\nversion 5.10.0-1\nlinux /vmlinuz-5.10\ninitrd /initramfs-5.10.img\noptions ${kernelopts} quiet\n',
    '/boot/loader/entries/z.conf': 'title Keyed\nsort-key zzz\nlinux /vmlinuz-k\n',
    '/boot/vmlinuz-5.10': '', '/boot/vmlinuz-5.9': '', '/boot/initramfs-5.10.img': '',
    '/boot/grub2/grubenv': '# GRUB Environment Block\nkernelopts=root=/dev/xvda2 ro\nsaved_entry=a-5.9\n',
  });
  const m = (await findBootConfig(fs))!;
  assert.equal(m.format, 'bls');
  assert.deepEqual(m.entries.map((e) => e.title), ['Keyed', 'New', 'Old']);
  assert.equal(m.defaultIndex, 2);
  assert.deepEqual([m.entries[1]!.kernel, m.entries[1]!.args, m.entries[1]!.initrd], ['/boot/vmlinuz-5.10', 'root=/dev/xvda2 ro quiet', ['/boot/initramfs-5.10.img']]);
});

test('discovery: pygrub order, first existing wins, lilo last, none → null', async () => {
  const both = memFs({ '/boot/grub/menu.lst': 'title L\nkernel /l\n', '/extlinux.conf': 'label E\nkernel /e\n', '/etc/lilo.conf': 'image=/x\n' });
  const m = (await findBootConfig(both))!;
  assert.equal(m.format, 'extlinux');
  assert.equal(m.configPath, '/extlinux.conf');
  const broken = memFs({ '/boot/grub/grub.cfg': '}\n', '/boot/grub/menu.lst': 'title L\nkernel /l\n' });
  assert.equal((await findBootConfig(broken).catch((e) => e)).code, 'Config'); // no fallback to menu.lst
  assert.equal((await findBootConfig(memFs({ '/etc/lilo.conf': 'image=/v\n' })))!.format, 'lilo');
  assert.equal(await findBootConfig(memFs({ '/etc/fstab': '' })), null);
});

test('--entry with Python int() semantics; invalid silently falls back; leading-space args', () => {
  assert.equal(pythonInt(' +1_0 '), 10);
  assert.equal(pythonInt('1__0'), null);
  assert.equal(pythonInt('_1'), null);
  assert.equal(pythonInt('0x1'), null);
  assert.equal(pythonInt('-0'), 0);
  const entries = Array.from({ length: 12 }, (_, i) => ({ title: ` T${i} `, kernel: '/k', initrd: [], args: null, lines: [], source: 's' }));
  const menu = { format: 'grub2' as const, configPath: 'c', entries, defaultIndex: 3, timeout: null, warnings: [] };
  assert.equal(resolveEntry(menu), 3);
  assert.equal(resolveEntry(menu, '1_0'), 10);
  assert.equal(resolveEntry(menu, '12'), 3);
  assert.equal(resolveEntry(menu, '-1'), 3);
  assert.equal(resolveEntry(menu, 'T5'), 5);
  assert.equal(resolveEntry(menu, 'nope'), 3);
  assert.equal(resolveEntry({ ...menu, defaultIndex: 99 }), 0);
  assert.equal(buildArgs(null, 'foo'), ' foo');
  assert.equal(buildArgs('a', 'b'), 'a b');
  assert.equal(buildArgs('a', ''), 'a');
});

test('config limits count UTF-8 bytes exactly: per line and in all, at the boundary', () => {
  const limits = resolveLimits({ configLineBytes: 30, configBytes: 100 });
  const check = (text: string) => {
    try {
      checkConfigText(text, limits, '/c');
      return 'ok';
    } catch (e) {
      return `${(e as { code?: string }).code}: ${(e as Error).message}`;
    }
  };
  // 10 three-byte characters are 30 bytes (10 UTF-16 units): at the limit, and one byte more is over.
  assert.equal(check('a\n' + '€'.repeat(10) + '\nb'), 'ok');
  assert.match(check('a\n' + '€'.repeat(10) + 'x\nb'), /LineTooLong: \/c: line 2 is longer than 30 bytes/);
  // A surrogate pair is one 4-byte code point: 7 of them (14 units) are 28 bytes, 8 are 32.
  assert.equal(check('😀'.repeat(7) + 'ab'), 'ok');
  assert.match(check('x\ny\n' + '😀'.repeat(8)), /LineTooLong: \/c: line 3/);
  // CRLF and the last line without a newline count like any other line.
  assert.match(check('ok\r\n' + 'é'.repeat(15) + 'z'), /line 2/);
  // The whole file: 34 lines of 'é\n' are 102 bytes in 68 units.
  assert.match(check('é\n'.repeat(34)), /LimitExceeded: .*configBytes.*\/c is 102 bytes/);
  assert.equal(check('é\n'.repeat(33)), 'ok');
});
