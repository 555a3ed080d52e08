/**
 * GRUB 2 device semantics (src/boot/devices.ts, the evaluator's search/loopback): device names,
 * `search` over real images, loopback chains, and hostile cases (self-reference, 20-deep nesting,
 * unknown UUIDs, disks and partitions that do not exist). Images: scripts/fixtures/grubdev.sh.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseGrub2 } from '../../src/boot/grub2/parser.ts';
import { DiskDevices, findPartition, grubDeviceName, grubLvmName, locateBootFile, parseGrubDevice } from '../../src/boot/devices.ts';
import type { DeviceResolver, GrubDeviceRef, SearchKind } from '../../src/boot/types.ts';
import { Disk } from '../../src/disk.ts';
import { defaultRegistry } from '../../src/fs/drivers.ts';
import { squashfs } from '../../src/fs/squashfs/index.ts';
import { MemorySource } from '../../src/io/source.ts';
import { createContext, type Limits } from '../../src/limits.ts';
import { nodeCodecs } from '../../src/codec/node.ts';
import { fixture } from '../helpers/fixtures.ts';
import { memFs } from './memfs.ts';

const P = '/boot/grub/grub.cfg';
// The UUID and label the fixture script gave mke2fs (-U/-L): inputs, not our output.
const P2_UUID = '9d0e0000-0000-4000-8000-0000000000b2';

async function openDisk(name: string, limits: Partial<Limits> = {}): Promise<Disk> {
  const ctx = createContext(limits, nodeCodecs);
  return Disk.open(new MemorySource(readFileSync(fixture(name)), name), ctx, defaultRegistry.with(squashfs));
}

async function homed(name: string, limits: Partial<Limits> = {}): Promise<{ disk: Disk; devs: DiskDevices }> {
  const disk = await openDisk(name, limits);
  const devs = new DiskDevices(disk);
  const c = (await disk.candidates())[0]!;
  devs.setHome(c, await disk.open(c));
  return { disk, devs };
}

const errorOf = async (p: Promise<unknown>): Promise<{ code: string; message: string }> => {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code?: string }).code ?? 'untyped', message: (e as Error).message };
  }
  return { code: 'ok', message: '' };
};

function fakeResolver(map: Record<string, string>): DeviceResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async search(kind: SearchKind, value: string) {
      asked.push(`${kind}:${value}`);
      return map[`${kind}:${value}`] ?? null;
    },
    async exists() {
      return false;
    },
  };
}

test('device names: parse, name and find partitions on MBR and GPT images', async () => {
  assert.deepEqual(parseGrubDevice('(hd0,msdos1,bsd2)'), { disk: 'hd0', parts: [{ scheme: 'msdos', n: 1 }, { scheme: 'bsd', n: 2 }] });
  assert.deepEqual(parseGrubDevice('hd0,3'), { disk: 'hd0', parts: [{ scheme: null, n: 3 }] });
  assert.equal(parseGrubDevice('hd0,gpt'), null);
  assert.equal(grubLvmName('my-vg', 'root'), 'lvm/my--vg-root');
  const gpt = await openDisk('gpt-search');
  assert.deepEqual((await gpt.candidates()).map((c) => grubDeviceName(gpt, c)), ['hd0,gpt1', 'hd0,gpt2']);
  assert.equal(findPartition(gpt, [{ scheme: 'gpt', n: 2 }])?.path, '2');
  assert.equal(findPartition(gpt, [{ scheme: null, n: 2 }])?.path, '2');
  assert.equal(findPartition(gpt, [{ scheme: 'msdos', n: 2 }]), null);
  assert.equal(findPartition(gpt, [{ scheme: 'gpt', n: 99 }]), null);
  const mbr = await openDisk('k3os');
  assert.deepEqual((await mbr.candidates()).map((c) => grubDeviceName(mbr, c)), ['hd0,msdos1']);
  const whole = await openDisk('live-iso-loop');
  assert.deepEqual((await whole.candidates()).map((c) => grubDeviceName(whole, c)), ['hd0']);
});

test('search over a real GPT image: --fs-uuid (any case), --label, --file; unknown values find nothing', async () => {
  const { devs } = await homed('gpt-search');
  assert.equal(await devs.search('fs-uuid', P2_UUID), 'hd0,gpt2');
  assert.equal(await devs.search('fs-uuid', P2_UUID.toUpperCase()), 'hd0,gpt2');
  assert.equal(await devs.search('label', 'gptboot'), 'hd0,gpt1');
  assert.equal(await devs.search('label', 'GPTBOOT'), null);
  assert.equal(await devs.search('file', '/p2-marker'), 'hd0,gpt2');
  assert.equal(await devs.search('file', '/vmlinuz'), 'hd0,gpt1');
  assert.equal(await devs.search('fs-uuid', '00000000-dead-4000-8000-000000000000'), null);
  assert.equal(await devs.exists('hd0,gpt2', '/p2-marker'), true);
  assert.equal(await devs.exists('hd0,gpt1', '/p2-marker'), false);
  assert.equal(await devs.exists('hd7,gpt99', '/p2-marker'), false);
});

test('evaluator: search sets root (top level and in entries), prefixes and $root decide the devices', async () => {
  const fs = { ...memFs({}), devices: fakeResolver({ 'fs-uuid:U2': 'hd0,gpt2', 'label:L3': 'hd0,gpt3', 'file:/f': 'hd0,gpt4' }) };
  const cfg = `set root='hd0,gpt1'
search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt9 --hint hd0,gpt8 U2
menuentry a { linux /k; initrd /i (hd0,gpt5)/j }
menuentry b { search.fs_label L3 root; linux /k }
menuentry c { search -f -s /f; linux ($root)/k }
menuentry d { search --set=other --fs-uuid U2; linux /k }
menuentry e { search --fs-uuid --set=root NOPE; linux /k }
menuentry f { linux /k }
`;
  const m = await parseGrub2(cfg, { configPath: P, fs });
  const [a, b, c, d, e] = m.entries;
  assert.deepEqual(a!.kernelFrom, { name: 'hd0,gpt2' });
  assert.deepEqual(a!.initrdFrom, [{ name: 'hd0,gpt2' }, { name: 'hd0,gpt5' }]);
  assert.deepEqual(a!.initrd, ['/i', '/j']);
  assert.deepEqual(b!.kernelFrom, { name: 'hd0,gpt3' });
  assert.deepEqual(c!.kernelFrom, { name: 'hd0,gpt4' });
  assert.equal(c!.kernelDevice, '(hd0,gpt4)');
  assert.deepEqual(d!.kernelFrom, { name: 'hd0,gpt2' }, '--set=other leaves root alone');
  assert.deepEqual(e!.kernelFrom, { name: 'hd0,gpt2' }, 'a failed search leaves root as it was');
  assert.match(e!.deviceNotes![0]!, /NOPE" found no device/);
  assert.deepEqual(fs.devices.asked.includes('fs-uuid:hd0,gpt8'), false, '--hint VALUE is not the search key');
  // Without a resolver nothing is decided: no search result, devices only from `set root`.
  const plain = await parseGrub2(cfg, { configPath: P, fs: memFs({}) });
  assert.deepEqual(plain.entries[0]!.kernelFrom, { name: 'hd0,gpt1' });
  assert.deepEqual((await parseGrub2('menuentry x { linux /k }', { configPath: P })).entries[0]!.kernelFrom, null);
});

test('evaluator: loopback captures its file and device; redefinition nests; -d removes; 20-deep chain is cut', async () => {
  const fs = { ...memFs({}), devices: fakeResolver({ 'label:S': 'hd0,msdos1' }) };
  const m = await parseGrub2(
    `set sq=/a/b.squashfs
menuentry a { search.fs_label S root; loopback loop0 /$sq; set root=($root); linux (loop0)/vmlinuz x; initrd (loop0)/initrd }
menuentry b { loopback l /x.img; loopback l (l,msdos1)/y.iso; linux (l)/k }
menuentry c { loopback l /x.img; loopback -d l; linux (l)/k }
menuentry d { loopback loop0 (loop0)/self.img; linux (loop0)/k }
menuentry e { loopback l0 /0.img
${Array.from({ length: 20 }, (_, i) => `loopback l${i + 1} (l${i})/n.img`).join('\n')}
linux (l20)/k }
`,
    { configPath: P, fs },
  );
  const [a, b, c, d, e] = m.entries;
  const sq: GrubDeviceRef = { name: 'loop0', loop: { path: '/a/b.squashfs', device: { name: 'hd0,msdos1' } } };
  assert.deepEqual(a!.kernelFrom, sq);
  assert.deepEqual(a!.initrdFrom, [sq]);
  assert.equal(a!.kernel, '/vmlinuz');
  assert.deepEqual(b!.kernelFrom, { name: 'l', loop: { path: '/y.iso', device: { name: 'l,msdos1', loop: { path: '/x.img', device: null } } } });
  assert.deepEqual(c!.kernelFrom, { name: 'l', removed: true });
  // A loopback of "itself" names the device before it exists: a plain, unknown name.
  assert.deepEqual(d!.kernelFrom, { name: 'loop0', loop: { path: '/self.img', device: { name: 'loop0' } } });
  assert.equal(e!.kernelFrom!.tooDeep, true);
});

test('loader resolution on real images: k3OS squashfs loopback, ISO loopback, explicit partitions', async () => {
  const k3 = await homed('k3os');
  const ref: GrubDeviceRef = { name: 'loop0', loop: { path: '//k3os/system/kernel/current/kernel.squashfs', device: { name: 'hd0,msdos1' } } };
  const got = await locateBootFile(k3.devs, (await k3.disk.open((await k3.disk.candidates())[0]!)), '/vmlinuz', ref);
  assert.equal(got.device, 'loop0');
  assert.equal(got.vfs.volume.type, 'squashfs');
  const live = await homed('live-iso-loop');
  const home = await live.disk.open(live.disk.whole());
  const iso = await locateBootFile(live.devs, home, '/casper/initrd', { name: 'loop', loop: { path: '/live/image.iso', device: null } });
  assert.equal(iso.vfs.volume.type, 'iso9660');
  const gpt = await homed('gpt-search');
  const gHome = await gpt.disk.open((await gpt.disk.candidates())[0]!);
  const p2 = await locateBootFile(gpt.devs, gHome, '/p2-marker', { name: 'hd0,2' });
  assert.equal(p2.device, 'hd0,2');
});

test('hostile devices: clear typed errors, and pygrub fallback only for disk names', async () => {
  const gpt = await homed('gpt-search');
  const home = await gpt.disk.open((await gpt.disk.candidates())[0]!);
  const noDisk = await errorOf(locateBootFile(gpt.devs, home, '/nope', { name: 'hd7,gpt99' }));
  assert.equal(noDisk.code, 'Config');
  assert.match(noDisk.message, /\(hd7,gpt99\).*only disk/);
  assert.match((await errorOf(locateBootFile(gpt.devs, home, '/nope', { name: 'hd0,gpt99' }))).message, /no such partition/);
  assert.match((await errorOf(locateBootFile(gpt.devs, home, '/nope', { name: 'hd0,msdos1' }))).message, /no such partition/);
  assert.match((await errorOf(locateBootFile(gpt.devs, home, '/nope', { name: 'cd' }))).message, /no disk or loopback device named cd/);
  assert.match((await errorOf(locateBootFile(gpt.devs, home, '/vmlinuz-missing', null, ['search --fs-uuid "X" found no device']))).message, /vmlinuz-missing.*found no device/);
  // pygrub compatibility: a partition image's grub.cfg naming (hd0,msdos1) still boots from its own filesystem.
  const fb = await locateBootFile(gpt.devs, home, '/vmlinuz', { name: 'hd0,msdos1' });
  assert.equal(fb.vfs, home);
  assert.match(fb.warnings[0]!, /pygrub/);
  // A loopback of itself (loop0 inside the not-yet-defined loop0) never falls back.
  const self = await errorOf(locateBootFile(gpt.devs, home, '/vmlinuz', { name: 'loop0', loop: { path: '/self.img', device: { name: 'loop0' } } }));
  assert.equal(self.code, 'Config');
  assert.match(self.message, /loop0/);
  // A loopback of a file that is no disk: the nested disk has no filesystem.
  const notDisk = await errorOf(locateBootFile(gpt.devs, home, '/vmlinuz', { name: 'l', loop: { path: '/boot/grub/grub.cfg', device: null } }));
  assert.equal(notDisk.code, 'Unsupported');
  assert.equal((await errorOf(locateBootFile(gpt.devs, home, '/vmlinuz', { name: 'l', loop: { path: '/missing.img', device: null } }))).code, 'NotFound');
  assert.equal((await errorOf(locateBootFile(gpt.devs, home, '/vmlinuz', { name: 'l', removed: true }))).code, 'Config');
});

test('loopback nesting is bounded by configDepth before any I/O; a real 2-level chain trips a budget of 1', async () => {
  const gpt = await homed('gpt-search');
  const home = await gpt.disk.open((await gpt.disk.candidates())[0]!);
  let ref: GrubDeviceRef | null = null;
  for (let i = 0; i < 20; i++) ref = { name: `l${i}`, loop: { path: '/n.img', device: ref } };
  const deep = await errorOf(locateBootFile(gpt.devs, home, '/k', ref));
  assert.equal(deep.code, 'LimitExceeded');
  assert.match(deep.message, /configDepth/);
  assert.equal((await errorOf(locateBootFile(gpt.devs, home, '/k', { name: 'l', tooDeep: true }))).code, 'LimitExceeded');
  // k3os: loop0 (squashfs) on loop-free hd0 is depth 1; a loop inside loop0 is depth 2.
  const k3 = await homed('k3os', { configDepth: 1 });
  const kHome = await k3.disk.open((await k3.disk.candidates())[0]!);
  const sq: GrubDeviceRef = { name: 'loop0', loop: { path: '/k3os/system/kernel/current/kernel.squashfs', device: null } };
  assert.equal((await locateBootFile(k3.devs, kHome, '/vmlinuz', sq)).vfs.volume.type, 'squashfs');
  const two = await errorOf(locateBootFile(k3.devs, kHome, '/k', { name: 'l2', loop: { path: '/vmlinuz', device: sq } }));
  assert.equal(two.code, 'LimitExceeded');
});
