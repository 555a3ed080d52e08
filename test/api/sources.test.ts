/**
 * The browser entry's sources and codecs, run in Node: a Blob, an HTTP server with range requests
 * and fflate's zlib must give the same answers and bytes as the Node entry (file descriptors,
 * node:zlib) on the same fixtures, and the fixture manifest's checksums.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { ROOT, fixture, manifest, sha256 } from '../helpers/fixtures.ts';
import { BlobSource, browserCodecs, openBlob, openUrl, openDisk, type DiskImage, type Vfs } from '../../src/browser/index.ts';
import { openImageFile } from '../../src/node/index.ts';

async function summary(img: DiskImage) {
  const { menu } = await img.bootMenu();
  return {
    scheme: img.partitionTable.scheme,
    fs: (await img.filesystems()).map((f) => [f.path, f.type, f.label, f.uuid]),
    titles: menu?.menu.entries.map((e) => e.title),
    selected: menu?.selected,
    kernel: menu?.kernel,
  };
}

async function walk(vfs: Vfs, dir = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dec = new TextDecoder();
  for (const e of await vfs.readdir(`/${dir}`)) {
    const p = dir ? `${dir}/${dec.decode(e.name)}` : dec.decode(e.name);
    const n = await vfs.lstat(`/${p}`);
    if (n.kind === 'dir') for (const [k, v] of await walk(vfs, p)) out.set(k, v);
    else if (n.kind === 'file') out.set(p, sha256(await vfs.readFile(n)));
  }
  return out;
}

const SAMPLE = join(ROOT, 'examples/sample-guest.img');

test('a Blob gives what a file descriptor gives', async () => {
  for (const path of [SAMPLE, fixture('gpt')]) {
    const node = await openImageFile(path);
    const blob = await openBlob(new Blob([readFileSync(path)]));
    try {
      assert.deepEqual(await summary(blob), await summary(node));
      const k = (await node.bootMenu()).menu!;
      assert.equal(sha256(await (await blob.mount(k.path)).readFile(k.kernel)), sha256(await (await node.mount(k.path)).readFile(k.kernel)));
    } finally {
      node.close();
    }
  }
});

test('a Blob is read range by range, never whole', async () => {
  const head = new Uint8Array(readFileSync(SAMPLE));
  let bytes = 0;
  let calls = 0;
  // A 2 GiB "file" whose first 8 MiB are the sample image and the rest zeros.
  const big = {
    size: 2 ** 31,
    slice(start = 0, end = 2 ** 31) {
      bytes += end - start;
      calls++;
      return {
        async arrayBuffer() {
          const out = new Uint8Array(end - start);
          if (start < head.length) out.set(head.subarray(start, Math.min(end, head.length)));
          return out.buffer;
        },
      };
    },
  };
  const img = await openBlob(big);
  assert.equal(img.size, 2 ** 31);
  assert.equal((await img.bootMenu()).menu?.menu.entries.length, 2);
  assert.ok(bytes < 16 * 2 ** 20, `read ${bytes} bytes in ${calls} slices`);
  await assert.rejects(new BlobSource(big).read(2 ** 31 - 1, 2), { code: 'Corrupt' });
});

async function withServer(mode: 'ranges' | 'no-ranges' | 'wrong-range', body: Uint8Array, fn: (url: string) => Promise<void>): Promise<void> {
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (mode === 'no-ranges' || !m) {
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    const a = Number(m[1]);
    const b = Math.min(Number(m[2]), body.length - 1);
    const shift = mode === 'wrong-range' && a > 0 ? 1 : 0;
    res.writeHead(206, { 'content-range': `bytes ${a + shift}-${b + shift}/${body.length}`, 'content-length': b - a + 1 });
    res.end(body.subarray(a + shift, b + 1 + shift));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  try {
    await fn(`http://127.0.0.1:${addr.port}/disk.img`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('an HTTP URL with range requests gives what a file descriptor gives', async () => {
  const path = fixture('gpt');
  const bytes = new Uint8Array(readFileSync(path));
  const node = await openImageFile(path);
  try {
    await withServer('ranges', bytes, async (url) => {
      const img = await openUrl(url);
      assert.equal(img.size, bytes.length);
      assert.deepEqual(await summary(img), await summary(node));
      assert.equal(sha256(await (await img.mount('3')).readFile('/sparse.bin')), manifest().get('sparse.bin'));
    });
    await withServer('no-ranges', bytes, async (url) => {
      await assert.rejects(openUrl(url), { code: 'Unsupported' });
    });
    await withServer('wrong-range', bytes, async (url) => {
      await assert.rejects(openUrl(url), { code: 'Io' });
    });
  } finally {
    node.close();
  }
});

test('fflate zlib reads a btrfs zlib filesystem exactly as node:zlib and the manifest say', async () => {
  const path = fixture('btrfs-zlib');
  const viaNode = await openImageFile(path);
  try {
    const viaWeb = await openDisk(new Uint8Array(readFileSync(path)), { codecs: browserCodecs });
    const a = await walk(await viaWeb.mount());
    const b = await walk(await viaNode.mount());
    assert.ok(a.size > 100, `${a.size} files`);
    assert.deepEqual(a, b);
    const m = manifest();
    for (const [p, h] of a) if (m.has(p)) assert.equal(h, m.get(p), p);
  } finally {
    viaNode.close();
  }
});

test('browser codecs: bombs stop at the cap, checksums are verified', () => {
  const zeros = new Uint8Array(4 << 20);
  const z = new Uint8Array(deflateSync(zeros));
  assert.equal(browserCodecs.zlib!(z, 4 << 20).length, 4 << 20);
  assert.throws(() => browserCodecs.zlib!(z, 1 << 20), { code: 'LimitExceeded' });
  const text = new TextEncoder().encode('hello hello hello hello tsgrub\n'.repeat(50));
  const zt = new Uint8Array(deflateSync(text));
  const padded = new Uint8Array(zt.length + 300);
  padded.set(zt);
  assert.deepEqual(browserCodecs.zlib!(padded, text.length), text, 'sector padding after the trailer');
  const bad = zt.slice();
  bad[bad.length - 1] ^= 1;
  assert.throws(() => browserCodecs.zlib!(bad, text.length), { code: 'Corrupt' });
  const gz = new Uint8Array(gzipSync(text));
  assert.deepEqual(browserCodecs.gzip!(gz, text.length), text);
  const badGz = gz.slice();
  badGz[badGz.length - 6] ^= 1;
  assert.throws(() => browserCodecs.gzip!(badGz, text.length), { code: 'Corrupt' });
  assert.throws(() => browserCodecs.deflate!(new Uint8Array([0xff, 0xff, 0xff]), 10), { code: 'Corrupt' });
});
