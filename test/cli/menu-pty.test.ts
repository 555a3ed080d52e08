/**
 * The interactive menu through a real pseudo-terminal (test/helpers/pty.ts), as libxl runs it:
 * TERM=vt100, no window size, stdin/stdout/stderr on the pty. Guest images are ext4 made by
 * `mke2fs -d` from a grub.cfg written here; the boot result is checked in the output file and in the
 * kernel/ramdisk copies (their bytes name the file they came from), the screen through a vt100 model
 * that is itself checked against tmux's terminal emulator.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, ROOT } from '../helpers/fixtures.ts';
import { PtySession, ptyAvailable, VtScreen, type PtyExit } from '../helpers/pty.ts';

const CLI = join(ROOT, 'bin/tsgrub');
const BUILT = join(ROOT, 'dist/cli/menu.js');
let work = '';

function skipReason(): string | null {
  if (!ptyAvailable()) return '/usr/bin/python3 not installed (pty relay)';
  if (!hasTool('mke2fs')) return 'mke2fs not installed';
  if (!existsSync(BUILT)) return 'dist/ not built (npm run build)';
  return null;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'tsgrub-menu-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

let imageNo = 0;
/** An ext4 image with /boot/vmlinuz-{a,b}, /boot/initrd-{a,b} and the given grub.cfg (raw bytes). */
function makeImage(grubCfg: string | Buffer): string {
  const n = imageNo++;
  const dir = join(work, `tree${n}`);
  mkdirSync(join(dir, 'boot/grub'), { recursive: true });
  for (const x of ['a', 'b']) {
    writeFileSync(join(dir, `boot/vmlinuz-${x}`), `KERNEL-${x.toUpperCase()}\n`.repeat(100));
    writeFileSync(join(dir, `boot/initrd-${x}`), `INITRD-${x.toUpperCase()}\n`.repeat(50));
  }
  writeFileSync(join(dir, 'boot/grub/grub.cfg'), grubCfg);
  const img = join(work, `disk${n}.img`);
  const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', dir, img, '8M'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return img;
}

function entry(title: string, k: 'a' | 'b', args: string, initrd = true): string {
  return `menuentry '${title}' {\n\tlinux /boot/vmlinuz-${k} ${args}\n${initrd ? `\tinitrd /boot/initrd-${k}\n` : ''}}\n`;
}

const TWO = `set default=0\nset timeout=30\n${entry('Alpha Linux', 'a', 'root=/dev/xvda1 ro')}${entry('Beta Linux', 'b', 'root=/dev/xvda2 quiet')}`;

interface Run {
  s: PtySession;
  out: string;
  dir: string;
}

function start(img: string, extra: string[] = []): Run {
  const n = imageNo++;
  const dir = join(work, `out${n}`);
  mkdirSync(dir);
  const out = join(work, `result${n}`);
  writeFileSync(out, '');
  const s = new PtySession([CLI, '--output-format=simple', `--output=${out}`, `--output-directory=${dir}`, ...extra, img]);
  return { s, out, dir };
}

interface Result {
  kernel: string | null;
  ramdisk: string | null;
  args: string | null;
}

/** Parses the simple output and reads what the kernel/ramdisk copies contain. */
function result(r: Run): Result {
  const text = readFileSync(r.out, 'utf8');
  const get = (k: string) => {
    const m = new RegExp(`^${k} (.*)$`, 'm').exec(text);
    return m ? (m[1] as string) : null;
  };
  const k = get('kernel');
  const rd = get('ramdisk');
  return {
    kernel: k ? readFileSync(k, 'utf8').split('\n')[0] ?? '' : null,
    ramdisk: rd ? readFileSync(rd, 'utf8').split('\n')[0] ?? '' : null,
    args: get('args'),
  };
}

async function finished(r: Run, ms = 20_000): Promise<PtyExit> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      r.s.kill();
      rej(new Error(`tsgrub did not finish; screen:\n${r.s.screen().dump()}`));
    }, ms);
  });
  try {
    return await Promise.race([r.s.done, t]);
  } finally {
    clearTimeout(timer);
  }
}

const MENU = 'Use the ^ and v keys';

/** The text of the box row r (between the frame's bars). */
function cell(scr: VtScreen, r: number): string {
  return scr.line(r).slice(3, 73).trimEnd();
}
const UP = '\x1b[A';
const DOWN = '\x1b[B';
const PGDN = '\x1b[6~';

test('↓ and Enter boot the second entry; vt100 only, laid out for 80×24 on a 0×0 pty', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r = start(makeImage(TWO));
  const info = await r.s.started;
  assert.deepEqual([info.rows, info.cols], [0, 0], 'the pty has no window size, as under libxl');
  let scr = await r.s.waitFor(MENU);
  assert.deepEqual(scr.reverseRows(), [3], 'the default entry is highlighted');
  assert.equal(scr.reversed(3).trimEnd(), 'Alpha Linux');
  assert.match(scr.dump(), /Will boot selected entry in \d+ seconds/);
  r.s.write(DOWN);
  scr = await r.s.waitScreen((s) => s.reverseRows()[0] === 4, 5000, 'highlight on row 4');
  assert.equal(scr.reversed(4).trimEnd(), 'Beta Linux');
  assert.doesNotMatch(scr.dump(), /Will boot/, 'a key stops the countdown');
  r.s.write('\r');
  const ex = await finished(r);
  assert.equal(ex.exit, 0);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: 'INITRD-B', args: 'root=/dev/xvda2 quiet' });
  const all = new VtScreen().feed(r.s.text());
  assert.deepEqual(all.unknown, [], 'only CUP, ED, EL and SGR 0/7 were sent');
  assert.ok(ex.icanon && ex.echo, 'terminal back in cooked mode');
});

test('the countdown runs on its own and boots the default when it expires', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const cfg = `set default=1\nset timeout=2\n${entry('Alpha Linux', 'a', 'root=/dev/xvda1')}${entry('Beta Linux', 'b', 'root=/dev/xvda2')}`;
  const r = start(makeImage(cfg));
  await r.s.waitFor('Will boot selected entry in  2 seconds');
  const t0 = Date.now();
  await r.s.waitFor('Will boot selected entry in  1 seconds', 3000);
  const ex = await finished(r);
  const took = Date.now() - t0;
  assert.equal(ex.exit, 0);
  assert.ok(took >= 500 && took < 4000, `booted ${took} ms after the countdown showed 1`);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: 'INITRD-B', args: 'root=/dev/xvda2' });
});

test('a key (even one that does nothing, q) stops the countdown for good', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const cfg = `set timeout=1\n${entry('Alpha Linux', 'a', 'one')}${entry('Beta Linux', 'b', 'two')}`;
  const r = start(makeImage(cfg));
  await r.s.waitFor(MENU);
  r.s.write('q');
  await r.s.waitScreen((s) => !s.dump().includes('Will boot'), 3000, 'countdown gone');
  await new Promise((res) => setTimeout(res, 2500));
  assert.equal(readFileSync(r.out, 'utf8'), '', 'nothing booted while waiting');
  assert.ok(r.s.screen().dump().includes(MENU), 'still on the menu');
  r.s.write('\r');
  assert.equal((await finished(r)).exit, 0);
  assert.equal(result(r).kernel, 'KERNEL-A');
});

test('no timeout boots after about a second; hidden with timeout=0 boots at once without drawing', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r1 = start(makeImage(`${entry('Alpha Linux', 'a', 'x=1')}${entry('Beta Linux', 'b', 'x=2')}`));
  await r1.s.waitFor('Will boot selected entry in  1 seconds');
  assert.equal((await finished(r1, 5000)).exit, 0);
  assert.equal(result(r1).args, 'x=1');
  const r2 = start(makeImage(`set timeout=0\nset timeout_style=hidden\nset default=1\n${entry('Alpha Linux', 'a', 'x=1')}${entry('Beta Linux', 'b', 'x=2')}`));
  assert.equal((await finished(r2, 5000)).exit, 0);
  assert.equal(result(r2).args, 'x=2');
  assert.ok(!r2.s.text().includes(MENU), 'the menu was never drawn');
});

test("'a' edits the kernel line and boots it", async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r = start(makeImage(TWO));
  await r.s.waitFor(MENU);
  r.s.write(DOWN);
  await r.s.waitScreen((s) => s.reverseRows()[0] === 4);
  r.s.write('a');
  const scr = await r.s.waitFor('> linux /boot/vmlinuz-b root=/dev/xvda2 quiet');
  assert.equal(scr.row, 5, 'cursor on the prompt row');
  r.s.write('\x15'); // ^U: kill the line before the cursor
  r.s.write(`linux /boot/vmlinuz-b root=/dev/xvda9 single${'\x1b[D'.repeat(7)}\x7f3`);
  await r.s.waitFor('> linux /boot/vmlinuz-b root=/dev/xvda3 single');
  r.s.write('\x05 init=/bin/sh\r'); // ^E, then type at the end
  assert.equal((await finished(r)).exit, 0);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: 'INITRD-B', args: 'root=/dev/xvda3 single init=/bin/sh' });
});

test("'e' edits an entry (change the kernel, delete the initrd line) and 'b' boots it", async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r = start(makeImage(TWO));
  await r.s.waitFor(MENU);
  r.s.write('e');
  let scr = await r.s.waitFor("Press 'b' to boot");
  assert.equal(scr.reversed(3).trimEnd(), 'linux /boot/vmlinuz-a root=/dev/xvda1 ro');
  assert.equal(cell(scr, 4), 'initrd /boot/initrd-a');
  r.s.write('e');
  await r.s.waitFor('> linux /boot/vmlinuz-a');
  // Home, past "linux /boot/vmlinuz-", Delete the "a", type "b"; End; append.
  r.s.write('\x01' + '\x1b[C'.repeat(20) + '\x1b[3~b\x05 edited=1\r');
  scr = await r.s.waitFor('linux /boot/vmlinuz-b root=/dev/xvda1 ro edited=1');
  r.s.write(DOWN + 'd');
  await r.s.waitScreen((s) => !s.dump().includes('initrd /boot/initrd-a'), 5000, 'initrd line deleted');
  r.s.write('O');
  await r.s.waitFor('ESC at any time cancels');
  r.s.write('\x1b'); // a lone Esc is recognised after 50 ms: wait for its screen before the next key
  await r.s.waitScreen((x) => x.dump().includes("Press 'b' to boot") && !x.dump().includes('cancels'), 5000, 'back in the entry editor');
  r.s.write('b');
  assert.equal((await finished(r)).exit, 0);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: null, args: 'root=/dev/xvda1 ro edited=1' });
});

test("the 'c' command line boots a kernel by hand", async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const r = start(makeImage(TWO));
  await r.s.waitFor(MENU);
  r.s.write('c');
  await r.s.waitFor("Typing 'boot' will boot");
  r.s.write('frobnicate\r');
  await r.s.waitFor('error: unknown command');
  r.s.write('boot\r');
  await r.s.waitFor('error: no kernel given');
  r.s.write('kernel /boot/vmlinuz-b root=/dev/cmd console=hvc0\r');
  await r.s.waitFor('grubdom> kernel /boot/vmlinuz-b root=/dev/cmd console=hvc0');
  r.s.write('initrd /boot/initrd-a\rboot\r');
  assert.equal((await finished(r)).exit, 0);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: 'INITRD-A', args: 'root=/dev/cmd console=hvc0' });
});

test('titles full of escape sequences render inert', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const evil = '\x1b]0;pwned\x07\x1b[2J\u009b31mRED\x00nul\x1b[H\x1bc';
  const cfg = Buffer.from(`set timeout=30\nmenuentry "${evil}" {\n\tlinux /boot/vmlinuz-a evil\n}\n${entry('Beta Linux', 'b', 'ok')}`, 'utf8');
  const r = start(makeImage(cfg));
  const scr = await r.s.waitFor(MENU);
  const raw = r.s.raw();
  assert.equal(raw.indexOf('\x1b]'), -1, 'no OSC sequence reached the terminal');
  assert.equal(raw.indexOf(Buffer.from([0xc2, 0x9b])), -1, 'no C1 CSI (UTF-8) reached the terminal');
  assert.equal(raw.indexOf(Buffer.from([0x9b])), -1, 'no raw 0x9b byte');
  assert.equal(raw.indexOf(0), -1, 'no NUL byte');
  assert.equal(raw.indexOf('\x1bc'), -1, 'no RIS');
  assert.equal(scr.clears, 1, 'the screen was cleared once, by the menu itself');
  assert.deepEqual(scr.unknown, []);
  // The title is shown as text, escaped, in reverse video, inside the frame.
  assert.equal(scr.reversed(3), '\\x1B]0;pwned\\x07\\x1B[2J\\x9B31mRED\\x00nul\\x1B[H\\x1Bc'.padEnd(70));
  assert.equal(scr.line(3)[74], '|', 'the frame is intact');
  assert.equal(scr.line(1).trim(), 'tsgrub  (pyGRUB-compatible boot menu)', 'nothing moved the cursor home');
  r.s.write('\r');
  assert.equal((await finished(r)).exit, 0);
  assert.equal(result(r).args, 'evil');
});

test('100 entries scroll; PgDn and ↓ reach entry 50', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  let cfg = 'set timeout=30\n';
  for (let i = 1; i <= 100; i++) cfg += entry(`Entry number ${i}`, i % 2 ? 'a' : 'b', `n=${i}`);
  const r = start(makeImage(cfg));
  let scr = await r.s.waitFor(MENU);
  assert.equal(cell(scr, 3), 'Entry number 1');
  assert.equal(cell(scr, 10), 'Entry number 8', 'eight titles fit');
  assert.match(scr.line(11), /vvv/, 'more below');
  r.s.write(PGDN.repeat(6) + DOWN);
  scr = await r.s.waitScreen((s) => s.reversed(10).trimEnd() === 'Entry number 50', 5000, 'entry 50 highlighted');
  assert.equal(cell(scr, 3), 'Entry number 43', 'scrolled');
  assert.match(scr.line(2), /\^\^\^/, 'more above');
  r.s.write(UP.repeat(7));
  scr = await r.s.waitScreen((s) => s.reversed(3).trimEnd() === 'Entry number 43', 5000, 'entry 43 at the top');
  r.s.write(DOWN.repeat(7) + '\r');
  assert.equal((await finished(r)).exit, 0);
  assert.deepEqual(result(r), { kernel: 'KERNEL-B', ramdisk: 'INITRD-B', args: 'n=50' });
});

for (const how of ['Ctrl-C', 'SIGTERM'] as const) {
  test(`${how} restores the terminal and leaves no files in the output directory`, async (t) => {
    const why = skipReason();
    if (why) return t.skip(why);
    const r = start(makeImage(TWO));
    const { pid } = await r.s.started;
    await r.s.waitFor(MENU);
    r.s.write('e');
    await r.s.waitFor("Press 'b' to boot");
    assert.equal(readdirSync(r.dir).length, 2, 'kernel and ramdisk temp files exist while the menu runs');
    if (how === 'Ctrl-C') r.s.write('\x03');
    else process.kill(pid, 'SIGTERM');
    const ex = await finished(r);
    assert.notEqual(ex.exit, 0);
    assert.deepEqual(readdirSync(r.dir), [], 'no files left behind');
    assert.equal(readFileSync(r.out, 'utf8'), '', 'nothing written to the output');
    assert.ok(ex.icanon && ex.echo && ex.isig, 'terminal back in cooked mode');
    assert.equal(r.s.screen().clears, 2, 'the menu cleared the screen on its way out');
  });
}

test('with no terminal the menu is skipped as with -q, and stderr says so', (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const img = makeImage(`set default=1\n${TWO.split('\n').slice(2).join('\n')}`);
  const dir = join(work, 'notty');
  mkdirSync(dir);
  const out = join(work, 'notty.out');
  writeFileSync(out, '');
  const r = spawnSync(CLI, ['--output-format=simple', `--output=${out}`, `--output-directory=${dir}`, img], { encoding: 'utf8', input: '', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /no terminal for the interactive menu; booting the default entry \(as -q\)/);
  assert.match(readFileSync(out, 'utf8'), /^args root=\/dev\/xvda2 quiet$/m);
});

test('the vt100 model reads the menu as tmux does', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  if (!hasTool('tmux')) return t.skip('tmux not installed');
  const img = makeImage(TWO);
  const dir = join(work, 'tmux');
  mkdirSync(dir);
  const out = join(work, 'tmux.out');
  writeFileSync(out, '');
  const sock = `tsgrub-menu-${process.pid}`;
  const tm = (...a: string[]) => spawnSync('tmux', ['-L', sock, ...a], { encoding: 'utf8' });
  try {
    assert.equal(tm('new-session', '-d', '-x', '80', '-y', '24', `TERM=vt100 ${CLI} --output-format=simple --output=${out} --output-directory=${dir} ${img}; sleep 20`).status, 0);
    let pane = '';
    for (let i = 0; i < 100 && !pane.includes(MENU); i++) {
      await new Promise((res) => setTimeout(res, 100));
      pane = tm('capture-pane', '-p').stdout;
    }
    assert.ok(pane.includes(MENU), `menu shown in tmux:\n${pane}`);
    tm('send-keys', 'Down');
    for (let i = 0; i < 50; i++) {
      await new Promise((res) => setTimeout(res, 100));
      pane = tm('capture-pane', '-p').stdout;
      if (!pane.includes('Will boot')) break;
    }
    const styled = tm('capture-pane', '-p', '-e').stdout.split('\n');
    assert.match(styled[4] ?? '', /\x1b\[7mBeta Linux {60}\x1b\[(27|0)?m/, 'tmux sees Beta Linux in reverse video');
    // Replay the full redraw into the model: the same 24 lines as tmux shows.
    const { frame } = await import('../../src/cli/menu.ts');
    const { initialState, reduce } = await import('../../src/cli/menu-model.ts');
    const view = (title: string, k: string) => ({ title, kernel: `/boot/vmlinuz-${k}`, initrd: null, args: null, lines: [] });
    const st = reduce(initialState([view('Alpha Linux', 'a'), view('Beta Linux', 'b')], 0, 30), 'down');
    const model = new VtScreen().feed(frame(st, null).bytes).dump().split('\n');
    const tmuxLines = pane.split('\n').slice(0, 24).map((l) => l.trimEnd());
    assert.deepEqual(tmuxLines, model);
    tm('send-keys', 'Enter');
    for (let i = 0; i < 100 && readFileSync(out, 'utf8') === ''; i++) await new Promise((res) => setTimeout(res, 100));
    assert.match(readFileSync(out, 'utf8'), /^args root=\/dev\/xvda2 quiet$/m);
  } finally {
    tm('kill-server');
  }
});
