/**
 * The page: sends the picked image to the worker and renders what it reports. Guest strings only
 * ever go through textContent (they are data, never markup). Every failure becomes a visible message.
 */
import type { DirRow, FilesystemRow, Reply, Request, SerializedError, Summary } from './protocol.ts';

type Pending = { resolve(v: unknown): void; reject(e: SerializedError): void };

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const pending = new Map<number, Pending>();
let nextId = 1;

worker.onmessage = (ev: MessageEvent<Reply>) => {
  const r = ev.data;
  const p = pending.get(r.id);
  if (!p) return;
  pending.delete(r.id);
  if (r.ok) p.resolve(r.result);
  else p.reject(r.error);
};
worker.onerror = (ev) => {
  ev.preventDefault();
  const err = { code: 'Io', message: `the worker failed: ${ev.message || 'unknown error'}`, data: {} };
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  showError(err);
};

type Body = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
function call<T>(req: Body): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker.postMessage({ ...req, id });
  });
}

function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function errorText(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'message' in e) {
    const x = e as { code?: unknown; message: unknown };
    return typeof x.code === 'string' ? `${x.code}: ${String(x.message)}` : String(x.message);
  }
  return String(e);
}

function showError(e: unknown): void {
  const box = $('error');
  box.textContent = errorText(e);
  box.hidden = false;
}

function status(text: string): void {
  $('status').textContent = text;
}

function row(cells: string[]): HTMLTableRowElement {
  const tr = el('tr');
  for (const c of cells) tr.append(el('td', c));
  return tr;
}

function where(f: FilesystemRow): string {
  return f.path === '0' ? 'whole disk' : f.start === null ? `volume ${f.path}` : `partition ${f.path}`;
}

function renderSummary(s: Summary): void {
  const dl = $('disk');
  dl.replaceChildren();
  const facts: Array<[string, string]> = [
    ['file', s.name],
    ['size', `${bytes(s.size)} (${s.size} bytes)`],
    ['container', s.container ?? 'raw'],
    ['partition table', s.scheme ?? 'none'],
  ];
  if (s.tableId) facts.push(['disk id', s.tableId]);
  for (const w of s.warnings) facts.push(['warning', w]);
  for (const [k, v] of facts) dl.append(el('dt', k), el('dd', v));

  const pt = $('partitions').querySelector('tbody') as HTMLTableSectionElement;
  pt.replaceChildren(...s.partitions.map((p) => row([p.path, String(p.start), bytes(p.size), p.typeName ? `${p.typeName} (${p.type})` : p.type, p.bootable ? '*' : '', p.name ?? ''])));
  if (s.partitions.length === 0) pt.append(row(['—', '', '', 'no partition table: the whole disk is one filesystem', '', '']));

  const ft = $('filesystems').querySelector('tbody') as HTMLTableSectionElement;
  ft.replaceChildren(
    ...s.filesystems.map((f) => {
      const r = row([where(f), f.type ?? (f.error ? 'error' : '—'), f.label ?? '', f.uuid ?? '', bytes(f.size)]);
      if (f.error) r.append(el('td', f.error, 'err'));
      return r;
    }),
  );

  const boot = $('boot');
  boot.replaceChildren();
  if (s.boot) {
    const b = s.boot;
    boot.append(el('p', `${b.format} config ${b.configPath} on ${b.fs === '0' ? 'the whole disk' : `partition ${b.fs}`}${b.timeout !== null ? `, timeout ${b.timeout} s` : ''}`, 'muted'));
    const ol = el('ol', undefined, 'menu');
    ol.id = 'menu';
    b.entries.forEach((e, i) => {
      const li = el('li', e.title, i === b.selected ? 'default' : undefined);
      if (i === b.selected) li.setAttribute('aria-current', 'true');
      ol.append(li);
    });
    boot.append(ol);
    boot.append(el('p', `tsgrub boots entry ${b.selected}: kernel ${b.kernel}${b.ramdisk ? `, ramdisk ${b.ramdisk}` : ''}${b.args ? `, args "${b.args}"` : ''}`, 'menu-info'));
  } else {
    boot.append(el('p', 'No boot menu found.', 'muted'));
  }
  for (const f of s.bootFailures) boot.append(el('p', f, 'menu-info'));

  const trees = $('trees');
  trees.replaceChildren();
  for (const f of s.filesystems) {
    if (!f.type) continue;
    const div = el('div', undefined, 'tree');
    div.dataset.fs = f.path;
    div.append(el('div', `${where(f)} (${f.type}${f.label ? `, ${f.label}` : ''})`, 'fs-title'));
    const ul = el('ul');
    div.append(ul);
    trees.append(div);
    void expand(f.path, [], ul);
  }
}

const SLASH = 0x2f;

async function expand(fs: string, path: number[], ul: HTMLUListElement): Promise<void> {
  try {
    const rows = await call<DirRow[]>({ op: 'readdir', fs, path });
    ul.replaceChildren(...rows.map((r) => entry(fs, path, r)));
    if (rows.length === 0) ul.append(el('li', '(empty)', 'muted'));
  } catch (e) {
    ul.replaceChildren(el('li', errorText(e), 'err'));
  }
}

function entry(fs: string, parent: number[], r: DirRow): HTMLLIElement {
  const li = el('li');
  const path = [...parent, SLASH, ...r.raw];
  const shown = new TextDecoder().decode(new Uint8Array(path));
  li.dataset.path = shown;
  if (r.kind === 'dir') {
    const btn = el('button', `▸ ${r.name}/`);
    btn.setAttribute('aria-expanded', 'false');
    let sub: HTMLUListElement | null = null;
    btn.onclick = () => {
      if (sub) {
        sub.remove();
        sub = null;
        btn.textContent = `▸ ${r.name}/`;
        btn.setAttribute('aria-expanded', 'false');
        return;
      }
      sub = el('ul');
      sub.append(el('li', 'loading…', 'muted'));
      li.append(sub);
      btn.textContent = `▾ ${r.name}/`;
      btn.setAttribute('aria-expanded', 'true');
      void expand(fs, path, sub);
    };
    li.append(btn);
  } else if (r.kind === 'file') {
    const btn = el('button', r.name);
    btn.title = 'download';
    btn.onclick = () => void save(fs, path, r.name, li);
    li.append(btn, el('span', r.size === null ? '' : bytes(r.size), 'size'));
  } else {
    li.append(el('span', `${r.name}${r.kind === 'symlink' ? ' →' : ''}`), el('span', r.kind, 'size'));
  }
  return li;
}

async function save(fs: string, path: number[], name: string, li: HTMLLIElement): Promise<void> {
  li.querySelector('.err')?.remove();
  try {
    status(`reading ${name}…`);
    const blob = await call<Blob>({ op: 'download', fs, path });
    const url = URL.createObjectURL(blob);
    const a = el('a');
    a.href = url;
    a.download = name.replace(/[\\/\u0000-\u001f]/g, '_') || 'file';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status(`${name}: ${bytes(blob.size)}`);
  } catch (e) {
    li.append(el('span', errorText(e), 'err'));
    status('');
  }
}

async function openFile(file: File): Promise<void> {
  $('error').hidden = true;
  $('result').hidden = true;
  document.body.dataset.state = 'loading';
  status(`reading ${file.name}…`);
  try {
    const s = await call<Summary>({ op: 'open', file });
    renderSummary(s);
    $('result').hidden = false;
    status('');
    document.body.dataset.state = 'ready';
  } catch (e) {
    status('');
    showError(e);
    document.body.dataset.state = 'error';
  }
}

const input = $('image') as HTMLInputElement;
input.addEventListener('change', () => {
  const f = input.files?.[0];
  if (f) void openFile(f);
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const f = e.dataTransfer?.files[0];
  if (f) void openFile(f);
});
window.addEventListener('unhandledrejection', (e) => showError(e.reason));
window.addEventListener('error', (e) => showError(e.error ?? e.message));
