/// <reference lib="dom" />
/**
 * End to end in a real browser: Debian's chromium driven by playwright-core against the built page
 * served on 127.0.0.1. The page's answers (partitions, menu, default entry, file bytes, errors) are
 * compared with the same library in Node on the same fixtures, and file bytes with the fixture
 * manifest (sha256sum of the tree the images were built from).
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, fixture, manifest, sha256 } from '../helpers/fixtures.ts';
import { serveStatic } from './server.ts';
import { openImageFile, isTsgrubError } from '../../src/node/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

type PW = typeof import('playwright-core');
let pw: PW | null = null;
let missing = '';
try {
  pw = await import('playwright-core');
} catch {
  missing = 'playwright-core not installed (npm i -D playwright-core)';
}
if (!missing && !existsSync(CHROMIUM)) missing = `${CHROMIUM} not installed (apt-get install chromium)`;

let work = '';
let site: Awaited<ReturnType<typeof serveStatic>> | null = null;
let context: import('playwright-core').BrowserContext | null = null;

before(async () => {
  if (missing || !pw) return;
  work = mkdtempSync(join(tmpdir(), 'tsgrub-web-'));
  const script = '../../scripts/build-web.mjs';
  const { buildWeb } = (await import(script)) as { buildWeb(out: string): Promise<unknown> };
  await buildWeb(join(work, 'site'));
  site = await serveStatic(join(work, 'site'));
  context = await pw.chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1100, height: 900 },
  });
});

after(async () => {
  await context?.close();
  await site?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function skipIfMissing(t: TestContext): boolean {
  if (missing) {
    t.skip(missing);
    return true;
  }
  return false;
}

/** What Node's library says about an image, for comparison with the page. */
async function nodeView(path: string) {
  const img = await openImageFile(path);
  try {
    const boot = await img.bootMenu();
    return {
      partitions: img.partitionTable.partitions.map((p) => p.path),
      filesystems: (await img.filesystems()).map((f) => ({ path: f.path, type: f.type, label: f.label ?? null, uuid: f.uuid ?? null })),
      titles: boot.menu?.menu.entries.map((e) => e.title) ?? [],
      selected: boot.menu?.selected ?? -1,
      read: async (fs: string, file: string) => (await img.mount(fs)).readFile(file),
      close: () => img.close(),
    };
  } catch (e) {
    img.close();
    throw e;
  }
}

async function load(page: import('playwright-core').Page, file: string): Promise<string> {
  await page.goto(site!.url);
  await page.setInputFiles('#image', file);
  await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
  return (await page.evaluate(() => document.body.dataset.state)) ?? '';
}

async function pageView(page: import('playwright-core').Page) {
  return page.evaluate(() => ({
    partitions: [...document.querySelectorAll('#partitions tbody tr')].map((tr) => tr.children[0]?.textContent ?? ''),
    filesystems: [...document.querySelectorAll('#filesystems tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent ?? '')),
    titles: [...document.querySelectorAll('#menu li')].map((li) => li.textContent ?? ''),
    selected: [...document.querySelectorAll('#menu li')].findIndex((li) => li.classList.contains('default')),
  }));
}

async function download(page: import('playwright-core').Page, fs: string, dirs: string[], file: string): Promise<Uint8Array> {
  const tree = page.locator(`.tree[data-fs="${fs}"]`);
  let prefix = '';
  for (const d of dirs) {
    prefix += `/${d}`;
    await tree.locator(`li[data-path="${prefix}"] > button`).click();
  }
  const [dl] = await Promise.all([page.waitForEvent('download'), tree.locator(`li[data-path="${prefix}/${file}"] > button`).click()]);
  const p = await dl.path();
  assert.ok(p, 'download saved');
  assert.equal(dl.suggestedFilename(), file);
  return new Uint8Array(readFileSync(p));
}

const cases = [
  { name: 'examples/sample-guest.img', path: () => join(ROOT, 'examples/sample-guest.img'), fs: '1', dirs: ['boot'], file: 'vmlinuz-6.1.0-tsgrub', shot: true },
  { name: 'fixture gpt', path: () => fixture('gpt'), fs: '3', dirs: [], file: 'sparse.bin', shot: false },
];

for (const c of cases) {
  test(`page shows ${c.name} as Node reads it, and downloads a file byte for byte`, async (t) => {
    if (skipIfMissing(t)) return;
    const file = c.path();
    const want = await nodeView(file);
    const page = await context!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      assert.equal(await load(page, file), 'ready', await page.locator('#error').textContent() ?? '');
      const got = await pageView(page);
      assert.deepEqual(got.partitions, want.partitions);
      assert.deepEqual(got.titles, want.titles);
      assert.ok(want.titles.length > 0);
      assert.equal(got.selected, want.selected);
      for (const f of want.filesystems) {
        const row = got.filesystems.find((r) => r[0] === (f.path === '0' ? 'whole disk' : `partition ${f.path}`));
        assert.ok(row, `row for ${f.path}`);
        assert.equal(row[1], f.type ?? '—');
        assert.equal(row[2], f.label ?? '');
        assert.equal(row[3], f.uuid ?? '');
      }
      const bytes = await download(page, c.fs, c.dirs, c.file);
      const rel = [...c.dirs, c.file].join('/');
      const nodeBytes = await want.read(c.fs, `/${rel}`);
      assert.equal(bytes.length, nodeBytes.length);
      assert.equal(sha256(bytes), sha256(nodeBytes), 'browser and Node read the same bytes');
      assert.equal(sha256(bytes), manifest().get(rel), 'bytes match the tree the image was built from');
      if (c.shot) await page.screenshot({ path: join(ROOT, 'docs/web.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      want.close();
      await page.close();
    }
  });
}

test('a corrupt image gives a clear error message, the same one Node gives', async (t) => {
  if (skipIfMissing(t)) return;
  // Both GPT headers broken behind a protective MBR: the partition table is there but unusable.
  const bad = join(work, 'corrupt-gpt.img');
  copyFileSync(fixture('gpt'), bad);
  const fd = openSync(bad, 'r+');
  const size = readFileSync(bad).length;
  writeSync(fd, new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 4, 512 + 16); // primary header CRC
  writeSync(fd, new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 4, size - 512 + 16); // backup header CRC
  closeSync(fd);
  let nodeMessage = '';
  try {
    (await openImageFile(bad)).close();
  } catch (e) {
    assert.ok(isTsgrubError(e));
    nodeMessage = `${e.code}: ${e.message}`;
  }
  assert.ok(nodeMessage, 'Node rejects the image');
  const page = await context!.newPage();
  try {
    assert.equal(await load(page, bad), 'error');
    assert.equal(await page.locator('#error').isVisible(), true);
    assert.equal(await page.locator('#error').textContent(), nodeMessage);
    assert.equal(await page.locator('#result').isVisible(), false);
  } finally {
    await page.close();
  }
});

test('a file that is no disk image says so', async (t) => {
  if (skipIfMissing(t)) return;
  const junk = join(work, 'notes.txt');
  writeFileSync(junk, 'just some text, not a disk\n');
  const page = await context!.newPage();
  try {
    assert.equal(await load(page, junk), 'ready');
    const text = await page.locator('#filesystems').textContent();
    assert.match(text ?? '', /whole disk/);
    assert.match(await page.locator('#boot').textContent() ?? '', /No boot menu found/);
  } finally {
    await page.close();
  }
});

test('a 2 GiB image opens without loading it whole and the page stays responsive', async (t) => {
  if (skipIfMissing(t)) return;
  const big = join(work, 'big.img');
  copyFileSync(join(ROOT, 'examples/sample-guest.img'), big);
  truncateSync(big, 2 * 1024 ** 3); // sparse: the partition table and filesystem are in the first 8 MiB
  const page = await context!.newPage();
  try {
    await page.goto(site!.url);
    // Longest gap between main-thread timer ticks while the worker parses.
    await page.evaluate(() => {
      const w = window as unknown as { maxGap: number };
      w.maxGap = 0;
      let last = performance.now();
      setInterval(() => {
        const now = performance.now();
        w.maxGap = Math.max(w.maxGap, now - last);
        last = now;
      }, 10);
    });
    await page.setInputFiles('#image', big);
    await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', undefined, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', await page.locator('#error').textContent() ?? '');
    assert.match(await page.locator('#disk').textContent() ?? '', /2147483648 bytes/);
    assert.deepEqual((await pageView(page)).titles.length, 2);
    const gap = await page.evaluate(() => (window as unknown as { maxGap: number }).maxGap);
    assert.ok(gap < 500, `main thread blocked for ${gap} ms`);
  } finally {
    await page.close();
  }
});
