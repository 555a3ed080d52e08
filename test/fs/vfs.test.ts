/**
 * The shared path walk (src/fs/vfs.ts) over a driver that counts what it is asked: a lookup already
 * answered on the volume is not asked again (names and absences alike), paths and symlinks resolve
 * as before, and the node budget is charged for every step, remembered or not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createContext } from '../../src/limits.ts';
import { Vfs } from '../../src/fs/vfs.ts';
import { MemorySource } from '../../src/io/source.ts';
import type { DirEntry, FsNode, Volume } from '../../src/fs/types.ts';

interface Node extends FsNode {
  readonly children?: Map<string, Node>;
  readonly target?: string;
}

function tree(): Node {
  const dir = (id: string, entries: Record<string, Node>): Node => ({ kind: 'dir', size: 0, id, children: new Map(Object.entries(entries)) });
  const file = (id: string, size: number): Node => ({ kind: 'file', size, id });
  const link = (id: string, target: string): Node => ({ kind: 'symlink', size: target.length, id, target });
  return dir('root', {
    boot: dir('boot', {
      grub: dir('grub', { 'grub.cfg': file('cfg', 10) }),
      vmlinuz: file('kernel', 100),
      'vmlinuz-current': link('link', 'vmlinuz'),
      [String.fromCharCode(0xe9)]: file('e9', 1),
    }),
    'b\u00c3\u00a9': file('b-utf8', 2),
    etc: dir('etc', {}),
  });
}

/** A volume over `tree()` that records every lookup it is asked (directory id and name). */
function countingVolume(): { volume: Volume; asked: string[] } {
  const root = tree();
  const asked: string[] = [];
  const volume: Volume = {
    type: 'fake',
    source: new MemorySource(new Uint8Array(0)),
    root: async () => root,
    lookup: async (dir: FsNode, name: Uint8Array) => {
      const key = Buffer.from(name).toString('latin1');
      asked.push(`${dir.id}/${key}`);
      return (dir as Node).children?.get(key) ?? null;
    },
    async *readdir(): AsyncIterable<DirEntry> {},
    read: async () => new Uint8Array(0),
    readlink: async (n: FsNode) => new TextEncoder().encode((n as Node).target ?? ''),
  };
  return { volume, asked };
}

test('a lookup already answered on the volume is not asked of the driver again, absences included', async () => {
  const { volume, asked } = countingVolume();
  const vfs = new Vfs(volume, createContext());
  assert.equal((await vfs.stat('/boot/grub/grub.cfg')).size, 10);
  assert.deepEqual(asked, ['root/boot', 'boot/grub', 'grub/grub.cfg']);
  assert.equal((await vfs.stat('/boot/grub/grub.cfg')).size, 10);
  assert.equal((await vfs.stat('/boot/vmlinuz')).size, 100);
  assert.deepEqual(asked.slice(3), ['boot/vmlinuz'], 'only the new name is asked');
  assert.equal(await vfs.exists('/boot/grub2/grub.cfg'), false);
  assert.equal(await vfs.exists('/boot/grub2/grub.cfg'), false);
  assert.equal(await vfs.exists('/boot/grub2'), false);
  assert.deepEqual(asked.slice(4), ['boot/grub2'], 'an absence is remembered too');
  // Through a symlink: the link asked once, its target already known.
  assert.equal((await vfs.stat('/boot/vmlinuz-current')).size, 100);
  assert.equal((await vfs.stat('/boot/vmlinuz-current')).size, 100);
  assert.equal((await vfs.lstat('/boot/vmlinuz-current')).kind, 'symlink');
  assert.deepEqual(asked.slice(5), ['boot/vmlinuz-current']);
  // Names are kept as their bytes: "b" + UTF-8 é is not "b" + the byte 0xE9.
  assert.equal((await vfs.stat(new Uint8Array([0x2f, 0x62, 0xc3, 0xa9]))).id, 'b-utf8');
  assert.equal((await vfs.stat(new Uint8Array([0x2f, 0x62, 0x6f, 0x6f, 0x74, 0x2f, 0xe9]))).id, 'e9');
  assert.equal(await vfs.exists(new Uint8Array([0x2f, 0x62, 0xe9])), false);
  assert.deepEqual(asked.slice(6), ['root/b\u00c3\u00a9', 'boot/\u00e9', 'root/b\u00e9']);
  // Another Vfs over the same volume (another run) starts with nothing remembered.
  const again = new Vfs(volume, createContext());
  await again.stat('/boot/vmlinuz');
  assert.deepEqual(asked.slice(9), ['root/boot', 'boot/vmlinuz']);
});

test('every step of a walk is charged to the node budget, remembered or not', async () => {
  const { volume } = countingVolume();
  const ctx = createContext({ nodesVisited: 7 });
  const vfs = new Vfs(volume, ctx);
  await vfs.stat('/boot/grub/grub.cfg');
  assert.equal(ctx.budget.nodesVisited, 3);
  await vfs.stat('/boot/grub/grub.cfg');
  assert.equal(ctx.budget.nodesVisited, 6);
  await assert.rejects(vfs.stat('/boot/grub/grub.cfg'), (e: Error & { code?: string }) => e.code === 'LimitExceeded');
});

test('what a Vfs remembers is bounded: at 4,096 answers it forgets them all, and answers stay right', async () => {
  const { volume, asked } = countingVolume();
  const vfs = new Vfs(volume, createContext({ nodesVisited: 1_000_000 }));
  for (let i = 0; i < 5000; i++) assert.equal(await vfs.exists(`/etc/n${i}`), false);
  // 'root/etc' and n0…n4094 fill it; n4095 is asked with it full, so it starts again from n4095,
  // and the next walk asks for /etc again.
  assert.equal(asked.length, 5002);
  assert.deepEqual(asked.slice(4096, 4099), ['etc/n4095', 'root/etc', 'etc/n4096']);
  const before = asked.length;
  assert.equal(await vfs.exists('/etc/n4999'), false);
  assert.equal(await vfs.exists('/etc/n0'), false);
  assert.deepEqual(asked.slice(before), ['etc/n0']);
  assert.equal((await vfs.stat('/boot/vmlinuz')).size, 100);
});
