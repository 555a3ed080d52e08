/**
 * (Quotes inside a config's kernel line are not compared: GRUB 2 removes and re-adds them, pygrub
 * passes them through literally — a documented difference; quotes in --args go through both verbatim.)
 *
 * Differential test against the real pygrub (Debian xen-utils-4.17): the same generated images (GRUB 2,
 * GRUB legacy and extlinux configs; raw, MBR, GPT and multi-partition layouts), the same argument
 * vectors (-q, --entry by index and title, --kernel/--ramdisk/--args, all three output formats). The
 * records must be byte-identical once our temp paths are mapped to pygrub's, and the copied files must
 * have the same bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hasTool, ROOT } from '../helpers/fixtures.ts';

const PYGRUB = '/usr/lib/xen-4.17/bin/pygrub';
const TSGRUB = join(ROOT, 'bin/tsgrub');

interface Config {
  name: string;
  path: string;
  text: string;
  files: string[];
  entries: string[];
}

const K = '/boot/vmlinuz-5.10.0-21-amd64';
const I = '/boot/initrd.img-5.10.0-21-amd64';
const K2 = '/boot/vmlinuz-5.10.0-20-amd64';
const I2 = '/boot/initrd.img-5.10.0-20-amd64';

const CONFIGS: Config[] = [
  {
    name: 'grub2-debian',
    path: '/boot/grub/grub.cfg',
    text: `set default="0"\nset timeout=5\nmenuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class os $menuentry_id_option 'gnulinux-simple-1234' {\n\tload_video\n\tinsmod ext2\n\techo\t'Loading Linux 5.10.0-21-amd64 ...'\n\tlinux\t${K} root=UUID=1234 ro  quiet\n\techo\t'Loading initial ramdisk ...'\n\tinitrd\t${I}\n}\nmenuentry 'Debian GNU/Linux, with Linux 5.10.0-20-amd64' {\n\tlinux\t${K2} root=UUID=1234 ro single\n\tinitrd\t${I2}\n}\n`,
    files: [K, I, K2, I2],
    entries: ['Debian GNU/Linux', 'Debian GNU/Linux, with Linux 5.10.0-20-amd64'],
  },
  {
    name: 'grub2-submenu-default1',
    path: '/boot/grub2/grub.cfg',
    text: `set default=1\nmenuentry "Fedora" {\n  linux ${K} root=/dev/xvda2 ro rhgb\n  initrd ${I}\n}\nsubmenu "Advanced" {\n  menuentry "Fedora old" {\n    linux ${K2} root=/dev/xvda2 ro\n    initrd ${I2}\n  }\n  menuentry "Fedora rescue" {\n    linux16 ${K2} root=/dev/xvda2 ro rescue\n  }\n}\n`,
    files: [K, I, K2, I2],
    entries: ['Fedora', 'Fedora old', 'Fedora rescue'],
  },
  {
    name: 'legacy-menu.lst',
    path: '/boot/grub/menu.lst',
    text: `default=1\ntimeout=3\ntitle CentOS (2.6.32-754)\n\troot (hd0,0)\n\tkernel ${K} ro root=/dev/xvda1 console=hvc0\n\tinitrd ${I}\ntitle CentOS old\n\troot (hd0,0)\n\tkernel (hd0,0)${K2} ro root=/dev/xvda1\n\tinitrd (hd0,0)${I2}\n`,
    files: [K, I, K2, I2],
    entries: ['CentOS (2.6.32-754)', 'CentOS old'],
  },
  {
    name: 'legacy-grub.conf-noinitrd',
    path: '/boot/grub/grub.conf',
    text: `default 0\ntimeout 5\nhiddenmenu\ntitle Plain kernel\n  root (hd0,0)\n  kernel ${K} root=/dev/xvda1 ro\ntitle With initrd\n  root (hd0,0)\n  kernel ${K2}\n  initrd ${I2}\n`,
    files: [K, K2, I2],
    entries: ['Plain kernel', 'With initrd'],
  },
  {
    name: 'extlinux-append-initrd',
    path: '/boot/extlinux/extlinux.conf',
    text: `DEFAULT second\nTIMEOUT 30\nLABEL first\n  KERNEL ${K}\n  APPEND initrd=${I} root=/dev/xvda1 ro quiet\nLABEL second\n  KERNEL ${K2}\n  APPEND root=/dev/xvda1 ro initrd=${I2} nomodeset\n`,
    files: [K, I, K2, I2],
    entries: ['first', 'second'],
  },
  {
    name: 'extlinux-root',
    path: '/extlinux.conf',
    text: `default linux\nlabel linux\n  kernel /vmlinuz\n  append initrd=/initrd.img root=/dev/xvda1\n`,
    files: ['/vmlinuz', '/initrd.img'],
    entries: ['linux'],
  },
  {
    name: 'grub2-bootpart-paths',
    path: '/grub/grub.cfg',
    text: `set default="1"\nmenuentry 'Q' {\n linux ${K} root=/dev/xvda1   x=1\n initrd ${I}\n}\nmenuentry "R" {\n linux ${K} root=/dev/xvda1 ro\n}\n`,
    files: [K, I],
    entries: ['Q', 'R'],
  },
  {
    name: 'grub2-timeout-only',
    path: '/boot/grub/grub.cfg',
    text: `set timeout=1\nmenuentry 'only' {\n linux ${K}\n}\n`,
    files: [K],
    entries: ['only'],
  },
];

type Layout = 'raw' | 'mbr' | 'gpt' | 'mbr-p2';
const LAYOUTS: Layout[] = ['raw', 'mbr', 'gpt', 'mbr-p2'];

function sh(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function buildImage(dir: string, cfg: Config, layout: Layout): string {
  const tree = join(dir, `${cfg.name}-${layout}.tree`);
  mkdirSync(tree, { recursive: true });
  const put = (p: string, data: Uint8Array | string) => {
    mkdirSync(dirname(join(tree, p)), { recursive: true });
    writeFileSync(join(tree, p), data);
  };
  put(cfg.path, cfg.text);
  for (const f of cfg.files) put(f, Buffer.concat([Buffer.from(`FILE:${f}\n`), randomBytes(20_000 + f.length * 7)]));
  const fs = join(dir, `${cfg.name}-${layout}.fs`);
  sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, fs, '4M']);
  if (layout === 'raw') return fs;
  const img = join(dir, `${cfg.name}-${layout}.img`);
  writeFileSync(img, '');
  truncateSync(img, 8 << 20);
  if (layout === 'gpt') sh('sgdisk', ['-q', '-o', '-n', '1:2048:+1M', '-t', '1:ef02', '-n', '2:4096:+4M', '-t', '2:8300', img]);
  else if (layout === 'mbr') sh('sfdisk', ['-q', img], 'label: dos\nstart=2048, size=8192, type=83, bootable\n');
  else sh('sfdisk', ['-q', img], 'label: dos\nstart=2048, size=2048, type=6\nstart=4096, size=8192, type=83\n');
  const seek = layout === 'gpt' || layout === 'mbr-p2' ? '4096' : '2048';
  sh('dd', [`if=${fs}`, `of=${img}`, 'bs=512', `seek=${seek}`, 'conv=notrunc', 'status=none']);
  return img;
}

interface RunResult {
  rc: number | null;
  output: Buffer;
  files: Map<string, string>;
}

function runTool(tool: string, img: string, args: string[], work: string): RunResult {
  const outdir = mkdtempSync(join(work, 'out-'));
  const outfile = join(outdir, '..', `${outdir.split('/').pop()}.result`);
  writeFileSync(outfile, '');
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'vt100' };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(tool, [`--output=${outfile}`, `--output-directory=${outdir}`, ...args, img], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  const files = new Map<string, string>();
  for (const f of readdirSync(outdir)) files.set(join(outdir, f), createHash('sha256').update(readFileSync(join(outdir, f))).digest('hex'));
  return { rc: r.status, output: readFileSync(outfile), files };
}

/** Replaces each reported temp path by the sha256 of the file it names, so two runs compare. */
function normalise(r: RunResult): string {
  let s = r.output.toString('latin1');
  for (const [path, sum] of r.files) s = s.split(path).join(`<${path.includes('boot_kernel.') ? 'kernel' : 'ramdisk'}:${sum.slice(0, 16)}>`);
  return s;
}

test('tsgrub and the real pygrub produce the same records and files', { timeout: 900_000 }, (t) => {
  if (!existsSync(PYGRUB)) return t.skip('real pygrub (xen-utils-4.17) not installed');
  for (const tool of ['mke2fs', 'sfdisk', 'sgdisk']) if (!hasTool(tool)) return t.skip(`${tool} not installed`);
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-pygrub-diff-'));
  const formats = ['sxp', 'simple', 'simple0'];
  let images = 0;
  let runs = 0;
  try {
    for (const cfg of CONFIGS) {
      for (const layout of LAYOUTS) {
        const img = buildImage(work, cfg, layout);
        images++;
        const variants: string[][] = [['-q'], ['--entry=1'], [`--entry=${cfg.entries.at(-1)}`], ['-q', '--args=console=hvc0 extra=1'], ['-q', `--kernel=${cfg.files[0]}`, '--args=root=/dev/xvda1'], ['-q', `--kernel=${cfg.files[0]}`, `--ramdisk=${cfg.files.at(-1)}`], ['-q', `--args=it's "quoted" \\back\ttab é`]];
        variants.forEach((v, i) => {
          const args = [...v, `--output-format=${formats[(i + images) % 3]}`];
          const want = runTool(PYGRUB, img, args, work);
          const got = runTool(TSGRUB, img, args, work);
          runs++;
          const what = `${cfg.name}/${layout} ${args.join(' ')}`;
          assert.equal(got.rc, want.rc, `${what}: exit status`);
          if (want.rc === 0) {
            assert.equal(normalise(got), normalise(want), `${what}: records`);
            // pygrub leaves nothing extra on success either; we must never leave more than we report.
            assert.equal(got.files.size, want.files.size, `${what}: files in the output directory`);
          } else {
            assert.equal(got.files.size, 0, `${what}: tsgrub left files after a failure`);
          }
        });
      }
    }
    t.diagnostic(`${images} images, ${runs} argument vectors compared`);
    assert.ok(images >= 30);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
