/**
 * LVM2 on a real disk made by pvcreate/vgcreate/lvcreate (scripts/fixtures/lvm.sh): the LVs and
 * their sizes and segments as `lvs` reported them at build time (test/fixtures/lvm.lvs), the ext4
 * filesystems placed at the LV extents read back through the ext driver against the manifest, and
 * hostile metadata for the parser and the segment checks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isTsgrubError } from '../../src/errors.ts';
import { ext } from '../../src/fs/ext/index.ts';
import { Vfs } from '../../src/fs/vfs.ts';
import { MemorySource } from '../../src/io/source.ts';
import { createContext } from '../../src/limits.ts';
import { lvmCrc, parseConfig, scanLvm } from '../../src/lvm/index.ts';
import { scanPartitions } from '../../src/partition/index.ts';
import { FIXTURES, fixture, manifest, sha256 } from '../helpers/fixtures.ts';

async function lvmDisk(bytes?: Uint8Array) {
  const data = bytes ?? new Uint8Array(readFileSync(fixture('lvm')));
  const ctx = createContext();
  const disk = new MemorySource(data, 'lvm');
  const table = await scanPartitions(disk, ctx);
  const pvs = table.partitions.filter((p) => p.type === '0x8e').map((p) => ({ path: p.path, source: p.source }));
  return { ctx, data, pvs, table };
}

/** `lvs` rows: vg|lv|size|segtype|stripes|pe ranges (one row per segment). */
function lvsRows() {
  return readFileSync(join(FIXTURES, 'lvm.lvs'), 'utf8').trim().split('\n').map((l) => {
    const [vg, lv, size, segtype, stripes, ranges] = l.trim().split('|') as string[];
    return { vg, lv, size: Number(size), segtype, stripes: Number(stripes), ranges };
  });
}

describe('lvm fixture', () => {
  test('finds the LVs lvs reported, with their sizes and segments', async () => {
    const { ctx, pvs } = await lvmDisk();
    assert.equal(pvs.length, 2);
    const lvs = await scanLvm(pvs, ctx);
    const rows = lvsRows();
    const names = [...new Set(rows.map((r) => `${r.vg}/${r.lv}`))].sort();
    assert.deepEqual(lvs.map((l) => l.name).sort(), names);
    for (const lv of lvs) {
      const mine = rows.filter((r) => `${r.vg}/${r.lv}` === lv.name);
      assert.equal(lv.available, true, lv.name);
      assert.equal(lv.size, mine[0]!.size, lv.name);
      assert.equal(lv.segments.length, mine.length, `${lv.name} segments`);
      for (const [i, seg] of lv.segments.entries()) {
        assert.equal(seg.areas.length, mine[i]!.stripes, `${lv.name} stripes`);
        // pe ranges "pv1:10-17 pv2:0-3": the first extent of each area.
        const starts = mine[i]!.ranges!.split(' ').map((r) => Number(r.split(':')[1]!.split('-')[0]));
        assert.deepEqual(seg.areas.map((a) => a.startExtent), starts, `${lv.name} areas`);
      }
    }
  });

  test('each LV holds its ext4 and the files match the manifest', async () => {
    const { ctx, pvs } = await lvmDisk();
    const m = manifest();
    for (const lv of await scanLvm(pvs, ctx)) {
      const sb = await lv.source.read(1024, 1024);
      assert.equal(sb[56]! + sb[57]! * 256, 0xef53, `${lv.name} ext4 magic`);
      const vol = await ext.open(lv.source, ctx);
      assert.equal(vol.label, lv.lv);
      const vfs = new Vfs(vol, ctx);
      let compared = 0;
      for (const [p, sum] of m) {
        if (p.startsWith('boot/vmlinuz') || p.startsWith('boot/initrd')) continue; // left out of the LVM tree
        assert.equal(sha256(await vfs.readFile(p)), sum, `${lv.name}:${p}`);
        compared++;
      }
      assert.ok(compared > 300);
    }
  });

  test('a missing PV makes the LVs on it unavailable, with the reason', async () => {
    const { ctx, pvs } = await lvmDisk();
    const lvs = await scanLvm(pvs.slice(0, 1), ctx);
    const striped = lvs.find((l) => l.lv === 'striped')!;
    assert.equal(striped.available, false);
    assert.match(striped.error!.message, /missing/);
    await assert.rejects(striped.source.read(0, 512), (e) => isTsgrubError(e) && e.code === 'Unsupported');
    assert.equal(lvs.find((l) => l.lv === 'root')!.available, true);
  });
});

describe('lvm metadata parser', () => {
  const expectCode = (fn: () => unknown, code: string) =>
    assert.throws(fn, (e) => isTsgrubError(e) && e.code === code);

  test('grammar: sections, strings with escapes, numbers, arrays, comments', () => {
    const root = parseConfig('vg { a = "x\\"y\\\\z" # c\n n = -12\n f = 1.5\n arr = ["p", 0, "q", 3]\n s { } }\nversion = 1\n');
    const vg = root.section('vg')!;
    assert.equal(vg.string('a'), 'x"y\\z');
    assert.equal(vg.number('n'), -12);
    assert.equal(vg.number('f'), 1.5);
    assert.deepEqual(vg.array('arr'), ['p', 0, 'q', 3]);
    assert.ok(vg.section('s'));
    assert.equal(root.number('version'), 1);
  });

  test('__proto__ and constructor are inert keys', () => {
    const root = parseConfig('__proto__ = 1\nconstructor { prototype = "x" }\n');
    assert.equal(root.number('__proto__'), 1);
    assert.equal(root.section('constructor')!.string('prototype'), 'x');
    assert.equal(({} as Record<string, unknown>).prototype, undefined);
    assert.equal(Object.getPrototypeOf(root.entries), Map.prototype);
  });

  test('hostile text fails fast with typed errors', () => {
    expectCode(() => parseConfig('vg { a = 1 '), 'Corrupt');
    expectCode(() => parseConfig('vg { } }'), 'Corrupt');
    expectCode(() => parseConfig('a = "unterminated'), 'Corrupt');
    expectCode(() => parseConfig('a = 1\na = 2'), 'Corrupt');
    expectCode(() => parseConfig('a = 99999999999999999999'), 'Corrupt');
    expectCode(() => parseConfig('a = [[1]]'), 'Corrupt');
    const t0 = Date.now();
    expectCode(() => parseConfig('a { '.repeat(10_000) + '} '.repeat(10_000)), 'LimitExceeded');
    expectCode(() => parseConfig(`a = "${'x'.repeat(1 << 20)}"`), 'LimitExceeded');
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe('lvm hostile metadata on disk', () => {
  /** Rewrites the metadata text of every metadata area of PV `pvIndex` (same length, CRCs fixed). */
  async function withMetadata(edit: (text: string) => string) {
    const { data, pvs } = await lvmDisk();
    const out = data.slice();
    const dv = new DataView(out.buffer);
    for (const pv of pvs) {
      const base = (pv.source as unknown as { start: number }).start;
      // label in sector 1, pv_header at +32: uuid, size, data areas, metadata areas.
      let o = base + 512 + 32 + 40;
      while (dv.getBigUint64(o, true) !== 0n) o += 16;
      o += 16;
      const mda = base + Number(dv.getBigUint64(o, true));
      const off = Number(dv.getBigUint64(mda + 40, true));
      const len = Number(dv.getBigUint64(mda + 48, true));
      const text = new TextDecoder().decode(out.subarray(mda + off, mda + off + len)).replace(/\0+$/, '');
      const next = new TextEncoder().encode(edit(text));
      assert.ok(next.length <= len + 4096);
      out.fill(0, mda + off, mda + off + len);
      out.set(next, mda + off);
      dv.setBigUint64(mda + 48, BigInt(next.length), true);
      dv.setUint32(mda + 56, lvmCrc(next), true);
      dv.setUint32(mda, lvmCrc(out.subarray(mda + 4, mda + 512)), true);
    }
    return lvmDisk(out);
  }

  test('a segment past the PV end is Corrupt', async () => {
    const { ctx, pvs } = await withMetadata((t) => t.replace(/stripes = \[\n\t*"pv0", 0\n/, 'stripes = [\n"pv0", 100000\n'));
    await assert.rejects(scanLvm(pvs, ctx), (e) => isTsgrubError(e) && e.code === 'Corrupt' && /past/.test(e.message));
  });

  test('unsupported segment types are named', async () => {
    const { ctx, pvs } = await withMetadata((t) => t.replace('type = "striped"', 'type = "thin-pool"'));
    const lvs = await scanLvm(pvs, ctx);
    const bad = lvs.filter((l) => !l.available);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!.error!.message, /thin-pool/);
  });

  test('a corrupt metadata CRC is Corrupt', async () => {
    const { data, pvs } = await lvmDisk();
    const ctx = createContext();
    // Flip one byte of metadata text on each PV, CRCs left as they are.
    const out = data.slice();
    const text = new TextDecoder('latin1').decode(out);
    let at = text.indexOf('extent_size');
    while (at >= 0) {
      out[at] = 0x45;
      at = text.indexOf('extent_size', at + 1);
    }
    const again = await lvmDisk(out);
    await assert.rejects(scanLvm(again.pvs, ctx), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    assert.ok(pvs.length);
  });
});
