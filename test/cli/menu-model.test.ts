/** Unit tests of the menu state machine, the renderer, the entry re-parser and the key mapping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, initialState, parseEdited, reduce, render, type Key, type MenuState } from '../../src/cli/menu-model.ts';
import { frame, toKey } from '../../src/cli/menu.ts';
import { sanitizeMenu } from '../../src/cli/menu-driver.ts';
import type { MenuEntryView } from '../../src/cli/protocol.ts';
import { VtScreen } from '../helpers/pty.ts';

const grub2 = (title: string, k: string, args: string, initrd: string | null = null): MenuEntryView => ({
  title,
  kernel: k,
  initrd,
  args,
  lines: [`linux ${k} ${args}`, ...(initrd ? [`initrd ${initrd}`] : [])],
});

const ch = (c: string): Key => ({ char: c });
const run = (s: MenuState, keys: Key[]) => keys.reduce(reduce, s);
const type = (s: MenuState, text: string) => run(s, [...text].map(ch));

test('timeout: absent, -1 and 0 count down from 1 (pygrub); others as given, capped', () => {
  const e = [grub2('A', '/a', 'x')];
  assert.equal(initialState(e, 0, null).countdown, 1);
  assert.equal(initialState(e, 0, -1).countdown, 1);
  assert.equal(initialState(e, 0, 0).countdown, 1);
  assert.equal(initialState(e, 0, 7).countdown, 7);
  assert.equal(initialState(e, 0, 1e12).countdown, 86400);
  assert.equal(initialState(e, 0, Number.NaN).countdown, 1);
  let s = initialState(e, 0, 2);
  s = reduce(s, 'tick');
  assert.equal(s.countdown, 1);
  assert.equal(s.done, null);
  s = reduce(s, 'tick');
  assert.deepEqual(s.done, { index: 0, edited: null });
});

test('any key stops the countdown for good; q and Esc do nothing else', () => {
  const e = [grub2('A', '/a', 'x'), grub2('B', '/b', 'y')];
  let s = reduce(initialState(e, 1, 5), ch('q'));
  assert.equal(s.countdown, null);
  assert.equal(s.selected, 1);
  s = run(s, ['escape', 'tick', 'tick', 'tick', 'tick', 'tick', 'tick']);
  assert.equal(s.done, null);
  assert.equal(s.mode.kind, 'menu');
});

test('navigation clamps and scrolls by 8; Enter and b boot the highlighted entry', () => {
  const e = Array.from({ length: 100 }, (_, i) => grub2(`E${i + 1}`, '/k', `n=${i + 1}`));
  let s = initialState(e, 0, 10);
  s = run(s, ['up', 'pagedown', 'pagedown', 'down', ch('j'), ch('k')]);
  assert.equal(s.selected, 17);
  assert.equal(s.top, 11);
  s = reduce(s, 'end');
  assert.deepEqual([s.selected, s.top], [99, 92]);
  s = run(s, ['down', 'pageup']);
  assert.deepEqual([s.selected, s.top], [91, 91]);
  s = reduce(s, 'home');
  assert.deepEqual([s.selected, s.top], [0, 0]);
  assert.deepEqual(reduce(reduce(s, 'down'), ch('b')).done, { index: 1, edited: null });
  assert.equal(initialState(e, 50, 1).top, 43, 'a default below the fold is scrolled into view');
  const scr = render(initialState(e, 50, 1));
  assert.equal(scr.reverse, 10);
  assert.equal(scr.lines[10]?.slice(scr.highlight[0], scr.highlight[1]).trimEnd(), 'E51');
});

test('an entry without a kernel is not booted from the menu', () => {
  const e: MenuEntryView[] = [{ title: 'multiboot', kernel: null, initrd: null, args: null, lines: ['multiboot /xen'] }];
  const s = reduce(initialState(e, 0, 5), 'enter');
  assert.equal(s.done, null);
  assert.match(render(s).lines.join('\n'), /no Linux kernel/);
});

test("'a' edits the kernel line and boots; Esc goes back to the menu", () => {
  const e = [grub2('A', '/vmlinuz', 'root=/dev/xvda1 ro', '/initrd')];
  let s = reduce(initialState(e, 0, 5), ch('a'));
  assert.equal(s.mode.kind, 'line');
  assert.equal(reduce(s, 'escape').mode.kind, 'menu');
  s = type(s, ' single');
  s = reduce(s, 'enter');
  assert.deepEqual(s.done, { index: 0, edited: { kernel: '/vmlinuz', initrd: '/initrd', args: 'root=/dev/xvda1 ro single' } });
});

test('line editing: cursor keys, Home/End, Backspace/Delete, ^A ^E ^K ^U ^D, surrogate pairs', () => {
  const e = [grub2('A', '/k', 'abc')];
  let s = reduce(initialState(e, 0, 5), ch('c'));
  s = type(s, 'hello world');
  s = run(s, [{ ctrl: 'a' }, 'right', 'delete', 'end', 'backspace', 'home', ch('>')]);
  assert.equal(s.mode.kind === 'command' && s.mode.text, '>hllo worl');
  s = run(s, ['right', 'right', { ctrl: 'k' }]);
  assert.equal(s.mode.kind === 'command' && s.mode.text, '>hl');
  s = run(s, ['left', { ctrl: 'u' }]);
  assert.deepEqual(s.mode.kind === 'command' && [s.mode.text, s.mode.cursor], ['l', 0]);
  s = run(s, [{ ctrl: 'e' }, ch('😀'), ch('x'), 'left', 'left', 'backspace']);
  assert.deepEqual(s.mode.kind === 'command' && [s.mode.text, s.mode.cursor], ['😀x', 0], 'left steps over the pair; backspace removed l');
  s = run(s, [ch('😀'), 'left', { ctrl: 'd' }]);
  assert.deepEqual(s.mode.kind === 'command' && [s.mode.text, s.mode.cursor], ['😀x', 0], '^D deletes the whole pair');
});

test("'e': edit, o/O add, d deletes, Esc cancels a line, b boots the re-parsed entry", () => {
  const e = [grub2('A', '/vmlinuz', 'root=/dev/xvda1', '/initrd.img')];
  let s = run(initialState(e, 0, 5), [ch('e'), 'down', ch('d')]);
  assert.deepEqual(s.mode.kind === 'entry' && s.mode.lines, ['linux /vmlinuz root=/dev/xvda1']);
  s = run(s, [ch('o')]);
  s = type(s, 'initrd /other.img');
  s = reduce(s, 'enter');
  assert.deepEqual(s.mode.kind === 'entry' && s.mode.lines, ['linux /vmlinuz root=/dev/xvda1', 'initrd /other.img']);
  s = run(s, [ch('O'), ch('z'), 'escape']);
  assert.deepEqual(s.mode.kind === 'entry' && s.mode.lines, ['linux /vmlinuz root=/dev/xvda1', 'initrd /other.img'], 'cancelled new line removed');
  s = run(s, ['up', ch('e'), { ctrl: 'u' }]);
  s = type(s, 'linux (hd0,1)/vmlinuz-2 quiet');
  s = run(s, ['escape']);
  assert.equal(s.mode.kind === 'entry' && s.mode.lines[0], 'linux /vmlinuz root=/dev/xvda1', 'Esc discards the line edit');
  s = run(s, [ch('e'), { ctrl: 'u' }]);
  s = type(s, 'linux (hd0,1)/vmlinuz-2 quiet');
  s = run(s, ['enter', ch('b')]);
  assert.deepEqual(s.done?.edited, { kernel: '/vmlinuz-2', initrd: '/other.img', args: 'quiet' });
  // Esc from the entry screen discards all edits.
  const back = run(initialState(e, 0, 5), [ch('e'), ch('d'), 'escape', ch('b')]);
  assert.deepEqual(back.done, { index: 0, edited: null });
  // Deleting the kernel line leaves nothing to boot: b refuses with a message.
  const none = run(initialState(e, 0, 5), [ch('e'), ch('d'), ch('b')]);
  assert.equal(none.done, null);
  assert.match(render(none).lines.join('\n'), /no kernel line/);
});

test('parseEdited keeps parser values for unchanged fields and reads every format', () => {
  // GRUB 2 with variables: unchanged kernel keeps the expanded path, changed args are literal.
  const base: MenuEntryView = { title: 'x', kernel: '/boot/vmlinuz', initrd: '/boot/initrd', args: 'root=UUID=1', lines: ['linux ${prefix}/vmlinuz root=$uuid', 'initrd ${prefix}/initrd'] };
  assert.deepEqual(parseEdited(['linux ${prefix}/vmlinuz root=$uuid single', 'initrd ${prefix}/initrd'], base), { kernel: '/boot/vmlinuz', initrd: '/boot/initrd', args: 'root=$uuid single' });
  assert.deepEqual(parseEdited(base.lines, base), { kernel: '/boot/vmlinuz', initrd: '/boot/initrd', args: 'root=UUID=1' });
  const flat = (lines: string[]) => parseEdited(lines, { title: '', kernel: null, initrd: null, args: null, lines: [] });
  assert.deepEqual(flat(['root (hd0,0)', 'kernel=/vmlinuz ro quiet', 'initrd (hd0,0)/initrd.gz']), { kernel: '/vmlinuz', initrd: '/initrd.gz', args: 'ro quiet' });
  assert.deepEqual(flat(['LABEL x', 'KERNEL /vmlinuz', 'APPEND initrd=/ird.gz root=/dev/xvda1']), { kernel: '/vmlinuz', initrd: '/ird.gz', args: 'initrd=/ird.gz root=/dev/xvda1' });
  assert.deepEqual(flat(['title t', 'linux /vmlinuz', 'options a=1', 'options b=2', 'initrd /i1', 'initrd /i2']), { kernel: '/vmlinuz', initrd: '/i2', args: 'a=1 b=2' });
  assert.deepEqual(flat(['image=/vmlinuz', 'append="root=/dev/xvda1 ro"', 'initrd=/initrd']), { kernel: '/vmlinuz', initrd: '/initrd', args: 'root=/dev/xvda1 ro' });
  assert.equal(flat(['initrd /x']), null);
});

test('command line: kernel/initrd/boot, help, quit, unknown commands', () => {
  const e = [grub2('A', '/a', 'x')];
  let s = reduce(initialState(e, 0, 5), ch('c'));
  s = run(type(s, 'help'), ['enter']);
  assert.match(render(s).lines.join('\n'), /commands: kernel PATH/);
  s = run(type(s, 'kernel /k a=1'), ['enter']);
  s = run(type(s, 'initrd /i'), ['enter']);
  assert.match(render(s).lines[5] ?? '', /^ {2}grubdom> kernel \/k a=1$/);
  const quit = run(type(s, 'quit'), ['enter']);
  assert.equal(quit.mode.kind, 'menu');
  s = run(type(s, 'boot'), ['enter']);
  assert.deepEqual(s.done?.edited, { kernel: '/k', initrd: '/i', args: 'a=1' });
});

test('a legacy password locks e, a and c', () => {
  const e = [grub2('A', '/a', 'x')];
  for (const k of ['e', 'a', 'c']) assert.equal(reduce(initialState(e, 0, 5, true), ch(k)).mode.kind, 'menu');
  assert.match(render(initialState(e, 0, 5, true)).lines.join('\n'), /locked by a password/);
});

test('render: pygrub layout, escaped titles cut to the field by display width', () => {
  const e = [
    grub2('\x1b]0;t\x07\x1b[2J\u009b1m\u202e', '/a', 'x'),
    grub2('tab\there', '/a', 'x'),
    grub2('日本語'.repeat(20), '/a', 'x'),
    grub2('e\u0301'.repeat(80), '/a', 'x'),
  ];
  const scr = render(initialState(e, 0, 3));
  assert.equal(scr.lines[1], '    tsgrub  (pyGRUB-compatible boot menu)');
  assert.equal(scr.lines[2], ` +${'-'.repeat(72)}+`);
  assert.equal(scr.lines[3], ` | ${'\\x1B]0;t\\x07\\x1B[2J\\x9B1m\\u{202E}'.padEnd(70)} |`);
  assert.equal(scr.lines[4], ` | ${'tab     here'.padEnd(70)} |`);
  assert.equal(scr.lines[5]?.slice(3, -2), `${'日本語'.repeat(20).slice(0, 34)} >`, 'wide characters count two columns');
  assert.equal(scr.lines[6]?.slice(3, -2), `${'e\u0301'.repeat(69)}>`, 'combining marks count none');
  for (const l of scr.lines) assert.ok(displayWidth(l) <= 80, `fits 80 columns: ${l}`);
  for (const r of [3, 4, 5, 6]) assert.equal(displayWidth(scr.lines[r] as string), 75, `row ${r} is 75 columns`);
  assert.equal(scr.lines[20], '     Will boot selected entry in  3 seconds');
  assert.equal(scr.reverse, 3);
  for (const l of scr.lines) assert.doesNotMatch(l, /[\x00-\x1f\x7f-\x9f]/);
});

test('frame: vt100 bytes; only changed rows are rewritten', () => {
  const e = [grub2('A', '/a', 'x'), grub2('B', '/b', 'y')];
  const s0 = initialState(e, 0, 5);
  const f0 = frame(s0, null);
  const vt = new VtScreen().feed(f0.bytes);
  assert.deepEqual(vt.unknown, []);
  assert.equal(vt.reversed(3), 'A'.padEnd(70));
  const s1 = reduce(s0, 'tick');
  const f1 = frame(s1, f0.rows);
  assert.equal(f1.bytes, '\x1b[21;1H     Will boot selected entry in  4 seconds\x1b[K\x1b[24;1H');
  const f2 = frame(reduce(s1, 'down'), f1.rows);
  vt.feed(f1.bytes).feed(f2.bytes);
  assert.deepEqual(vt.reverseRows(), [4]);
  assert.equal(vt.line(20), '', 'countdown erased');
  assert.doesNotMatch(f2.bytes, /\x1b\[2J/);
});

test('toKey maps keypresses and drops control characters', () => {
  assert.equal(toKey(undefined, { name: 'up' }), 'up');
  assert.equal(toKey('\r', { name: 'return' }), 'enter');
  assert.equal(toKey('\x1b', { name: 'escape', meta: true }), 'escape');
  assert.deepEqual(toKey('\x01', { name: 'a', ctrl: true }), { ctrl: 'a' });
  assert.equal(toKey('\x03', { name: 'c', ctrl: true }), null);
  assert.deepEqual(toKey('é', {}), { char: 'é' });
  assert.deepEqual(toKey('😀', {}), { char: '😀' });
  assert.equal(toKey('\u009b', {}), null);
  assert.equal(toKey('\t', { name: 'tab' }), null);
  assert.equal(toKey('\x1bx', { name: 'x', meta: true }), null);
});

test('sanitizeMenu bounds and checks what the worker sent', () => {
  const m = sanitizeMenu({
    type: 'menu',
    entries: [{ title: 5, kernel: '/k', initrd: null, args: 'a'.repeat(10000), lines: ['x', 7] } as unknown as MenuEntryView],
    defaultIndex: 9,
    timeout: Infinity,
    hidden: 'yes' as unknown as boolean,
    password: false,
    partition: '',
    configPath: '/c',
  });
  assert.equal(m.entries[0]?.title, '(invalid entry)');
  assert.equal(m.entries[0]?.args?.length, 4096);
  assert.deepEqual(m.entries[0]?.lines, ['x', '']);
  assert.equal(m.defaultIndex, 0);
  assert.equal(m.timeout, null);
  assert.equal(m.hidden, false);
});
