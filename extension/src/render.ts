/**
 * DOM for the sidebar: the lists and the detail views. Plain DOM (no Lumino, no React), so
 * jest renders it in jsdom; the panel owns state and calls these with data + actions.
 */
import {
  ArtifactVersion,
  Job,
  datasetCell,
  datasetMeta,
  PromptDetail,
  PromptSummary,
  RunSummary,
  Schedule,
  WorkspaceData,
  diffLines,
  formatAgo,
  formatBytes,
  formatNumber,
  kvRows,
  modelCell,
  progressLabel,
  promptCell,
  promptRunCell,
  runCell,
  sparklinePath
} from './model';

export interface Actions {
  refresh(): void;
  back(): void;
  openPrompt(name: string): void;
  openRun(id: string): void;
  openJob(id: string): void;
  openArtifact(kind: ArtifactKind, ref: string): void;
  diff(name: string, a: number, b: number): void;
  insert(code: string): void;
}

type Child = Node | string | null | undefined | false;
export type ArtifactKind = 'index' | 'model' | 'dataset';

export function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      el.className = v;
    } else {
      el.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) {
      el.append(typeof c === 'string' ? document.createTextNode(c) : c);
    }
  }
  return el;
}

function button(label: string, title: string, onClick: () => void, cls = ''): HTMLElement {
  const b = h('button', { class: `jp-cellops-btn ${cls}`.trim(), title, type: 'button' }, label);
  b.addEventListener('click', e => {
    e.stopPropagation();
    onClick();
  });
  return b;
}

function row(onOpen: (() => void) | null, testid: string, ...children: Child[]): HTMLElement {
  const r = h('li', { class: 'jp-cellops-row', 'data-testid': testid }, ...children);
  if (onOpen) {
    r.classList.add('jp-cellops-clickable');
    r.addEventListener('click', onOpen);
  }
  return r;
}

function section(id: string, title: string, count: number, empty: string, rows: HTMLElement[]): HTMLElement {
  const list = rows.length
    ? h('ul', { class: 'jp-cellops-list' }, ...rows)
    : h('div', { class: 'jp-cellops-empty' }, empty);
  const d = h(
    'details',
    { class: 'jp-cellops-section', 'data-section': id, open: '' },
    h('summary', {}, title, h('span', { class: 'jp-cellops-count' }, String(count))),
    list
  );
  return d;
}

function chips(items: string[]): HTMLElement | null {
  return items.length ? h('span', { class: 'jp-cellops-chips' }, ...items.map(a => h('span', { class: 'jp-cellops-chip' }, a))) : null;
}

function progressBar(job: Job): HTMLElement {
  const pct = job.progress === null ? 0 : Math.round(job.progress * 100);
  const bar = h('div', { class: `jp-cellops-progress jp-cellops-status-${job.status}` });
  const fill = h('div', { class: 'jp-cellops-progress-fill' });
  fill.style.width = `${pct}%`;
  bar.append(fill);
  return bar;
}

export function renderLists(data: WorkspaceData, error: string | null, a: Actions, now = Date.now()): HTMLElement {
  const root = h('div', { class: 'jp-cellops-lists' });
  if (error) {
    root.append(renderError(error));
    if (!data.status.exists) {
      return root; // the workspace itself is unreadable: empty lists would only mislead
    }
  }
  if (!data.status.exists && !error) {
    root.append(
      h('div', { class: 'jp-cellops-empty jp-cellops-noworkspace' },
        'No cellops workspace here yet: run %load_ext cellops and a %%prompt cell in a notebook of this folder.')
    );
  }
  const prompts = data.prompts.map((p: PromptSummary) =>
    row(() => a.openPrompt(p.name), `prompt-${p.name}`,
      h('span', { class: 'jp-cellops-name' }, p.name),
      h('span', { class: 'jp-cellops-ver' }, `v${p.latest}`),
      chips(p.versions[p.versions.length - 1]?.aliases ?? []),
      h('span', { class: 'jp-cellops-meta' }, `${p.versions.length} version${p.versions.length === 1 ? '' : 's'}`),
      button('insert', `Insert a %%prompt ${p.name} cell with this template`, () => a.insert(promptCell(p)))
    )
  );
  const runs = data.runs.map((r: RunSummary) =>
    row(() => a.openRun(r.id), `run-${r.id}`,
      h('span', { class: 'jp-cellops-name' }, r.name ? `${r.name}${r.version ? '@' + r.version : ''}` : r.id),
      h('span', { class: 'jp-cellops-kind' }, r.kind),
      h('span', { class: `jp-cellops-status jp-cellops-status-${r.status}` }, r.status),
      h('span', { class: 'jp-cellops-meta' }, formatAgo(r.created_at, now))
    )
  );
  const indexes = data.indexes.map((v: ArtifactVersion) =>
    row(() => a.openArtifact('index', v.ref), `index-${v.ref}`,
      h('span', { class: 'jp-cellops-name' }, v.ref), chips(v.aliases),
      h('span', { class: 'jp-cellops-meta' }, `${formatBytes(v.size_bytes)} · ${v.files} files`))
  );
  const models = data.models.map((v: ArtifactVersion) =>
    row(() => a.openArtifact('model', v.ref), `model-${v.ref}`,
      h('span', { class: 'jp-cellops-name' }, v.ref), chips(v.aliases),
      h('span', { class: 'jp-cellops-meta' }, formatBytes(v.size_bytes)),
      button('insert', `Insert a cell that generates with ${v.ref}`, () => a.insert(modelCell(v.ref))))
  );
  const datasets = (data.datasets ?? []).map((v: ArtifactVersion) =>
    row(() => a.openArtifact('dataset', v.ref), `dataset-${v.ref}`,
      h('span', { class: 'jp-cellops-name' }, v.ref), chips(v.aliases),
      h('span', { class: 'jp-cellops-meta' }, datasetMeta(v)),
      button('insert', `Insert a cell that loads ${v.ref} as a DataFrame`, () => a.insert(datasetCell(v.ref))))
  );
  const jobs = data.jobs.map((j: Job) =>
    row(() => a.openJob(j.id), `job-${j.id}`,
      h('span', { class: 'jp-cellops-name' }, j.name ?? j.id),
      progressBar(j),
      h('span', { class: 'jp-cellops-meta' }, progressLabel(j)))
  );
  const schedules = data.schedules.map((s: Schedule, i: number) =>
    row(null, `schedule-${s.name ?? i}`,
      h('span', { class: 'jp-cellops-name' }, String(s.name ?? `schedule ${i + 1}`)),
      h('span', { class: 'jp-cellops-meta' }, scheduleText(s)))
  );
  root.append(
    section('prompts', 'Prompts', prompts.length, 'No prompts yet (%%prompt NAME saves one).', prompts),
    section('runs', 'Runs', runs.length, 'No runs yet.', runs),
    section('indexes', 'Indexes', indexes.length, 'No indexes yet (%%rag builds one).', indexes),
    section('models', 'Models', models.length, 'No models yet (%%finetune registers one).', models),
    section('datasets', 'Datasets', datasets.length, 'No datasets yet (%%dataset NAME saves one).', datasets),
    section('jobs', 'Fine-tuning jobs', jobs.length, 'No fine-tuning jobs.', jobs),
    section('schedules', 'Schedules', schedules.length, 'No schedules.', schedules)
  );
  return root;
}

export function scheduleText(s: Schedule): string {
  const parts: string[] = [];
  if (s.trigger) {
    parts.push(String(s.trigger));
  }
  if (s.target) {
    parts.push(String(s.target).split('/').pop() ?? '');
  }
  parts.push(s.paused ? 'paused' : s.next_run ? `next ${String(s.next_run).slice(0, 16)}` : '');
  return parts.filter(Boolean).join(' · ');
}

export function renderError(message: string): HTMLElement {
  return h('div', { class: 'jp-cellops-error', role: 'alert' }, message);
}

function kvTable(obj: Record<string, unknown> | null | undefined, testid: string): HTMLElement {
  const rows = kvRows(obj);
  if (!rows.length) {
    return h('div', { class: 'jp-cellops-empty' }, '(none)');
  }
  return h('table', { class: 'jp-cellops-kv', 'data-testid': testid },
    ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))));
}

function header(title: string, a: Actions): HTMLElement {
  return h('div', { class: 'jp-cellops-detail-head' }, button('‹ back', 'Back to the lists', () => a.back()), h('h3', {}, title));
}

export function renderDiff(text: string): HTMLElement {
  const pre = h('pre', { class: 'jp-cellops-diff', 'data-testid': 'diff' });
  const lines = diffLines(text);
  if (!lines.length) {
    pre.append('(no difference)');
  }
  for (const l of lines) {
    pre.append(h('span', { class: `jp-cellops-diff-${l.kind}` }, l.text), '\n');
  }
  return pre;
}

export function renderPrompt(d: PromptDetail, diff: { a: number; b: number; text: string | null }, a: Actions, now = Date.now()): HTMLElement {
  const root = h('div', { class: 'jp-cellops-detail' }, header(`prompt ${d.name}`, a));
  const pick = (value: number) => {
    const s = h('select', {}) as HTMLSelectElement;
    for (const v of d.versions) {
      const o = h('option', { value: String(v.version) }, `v${v.version}`) as HTMLOptionElement;
      o.selected = v.version === value;
      s.append(o);
    }
    return s;
  };
  if (d.versions.length > 1) {
    const sa = pick(diff.a);
    const sb = pick(diff.b);
    const go = () => a.diff(d.name, Number(sa.value), Number(sb.value));
    sa.addEventListener('change', go);
    sb.addEventListener('change', go);
    root.append(h('div', { class: 'jp-cellops-diffbar' }, 'diff ', sa, ' → ', sb));
    root.append(diff.text === null ? h('div', { class: 'jp-cellops-empty' }, 'loading diff…') : renderDiff(diff.text));
  }
  for (const v of [...d.versions].reverse()) {
    root.append(
      h('div', { class: 'jp-cellops-version', 'data-testid': `version-${v.ref}` },
        h('div', { class: 'jp-cellops-version-head' },
          h('b', {}, v.ref), chips(v.aliases),
          h('span', { class: 'jp-cellops-meta' }, `${v.hash.slice(0, 10)} · ${formatAgo(v.created_at, now)}`),
          button('insert cell', `Insert a %%prompt ${d.name} cell with v${v.version}'s template`, () => a.insert(promptCell({ ...v, name: d.name }))),
          button('insert run', `Insert %prompt run ${v.ref}`, () => a.insert(promptRunCell(v.ref)))),
        v.system ? h('div', { class: 'jp-cellops-meta' }, `system: ${v.system}`) : null,
        h('pre', { class: 'jp-cellops-template' }, v.template),
        Object.keys(v.params).length ? kvTable(v.params, 'params') : null)
    );
  }
  if (d.runs.length) {
    root.append(h('h4', {}, 'Runs'), h('ul', { class: 'jp-cellops-list' },
      ...d.runs.map(r => row(() => a.openRun(r.id), `run-${r.id}`,
        h('span', { class: 'jp-cellops-name' }, `${r.name}@${r.version}`),
        h('span', { class: `jp-cellops-status jp-cellops-status-${r.status}` }, r.status),
        h('span', { class: 'jp-cellops-meta' }, `${formatNumber(r.metrics.latency_s)} s · ${formatAgo(r.created_at, now)}`)))));
  }
  return root;
}

export function renderRun(r: RunSummary, a: Actions, now = Date.now()): HTMLElement {
  return h('div', { class: 'jp-cellops-detail' },
    header(`run ${r.id}`, a),
    h('div', { class: 'jp-cellops-meta' }, `${r.kind} · ${r.name ?? ''}${r.version ? '@' + r.version : ''} · ${r.status} · ${formatAgo(r.created_at, now)}${r.model ? ' · ' + r.model : ''}`),
    r.tracker_run_id ? h('div', { class: 'jp-cellops-meta', 'data-testid': 'run-tracker' }, `${r.tracker ?? 'tracker'} run ${r.tracker_run_id}`) : null,
    button('insert cell', 'Insert a cell that loads this run\'s record', () => a.insert(runCell(r.id))),
    h('h4', {}, 'Metrics'), kvTable(r.metrics, 'metrics'),
    h('h4', {}, 'Params'), kvTable(r.params, 'params'),
    r.output ? h('h4', {}, 'Output') : null,
    r.output ? h('pre', { class: 'jp-cellops-template' }, r.output) : null,
    h('details', {}, h('summary', {}, 'Full record'), h('pre', { class: 'jp-cellops-json' }, JSON.stringify(r.record ?? {}, null, 1))));
}

export function renderJob(j: Job, a: Actions, now = Date.now()): HTMLElement {
  const losses = (j.summary.losses as [number, number][] | undefined) ?? [];
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('viewBox', '0 0 200 50');
  svg.setAttribute('class', 'jp-cellops-spark');
  const path = document.createElementNS(svgNS, 'path');
  path.setAttribute('d', sparklinePath(losses, 200, 50));
  svg.append(path);
  const events = (j.events ?? []).slice(-20);
  return h('div', { class: 'jp-cellops-detail' },
    header(`fine-tune ${j.name ?? j.id}`, a),
    h('div', { class: 'jp-cellops-meta' }, `job ${j.id} · started ${formatAgo(j.created_at, now)}${j.base_model ? ' · base ' + j.base_model : ''}`),
    progressBar(j),
    h('div', { class: 'jp-cellops-joblabel', 'data-testid': 'job-label' }, progressLabel(j)),
    losses.length ? h('h4', {}, 'Training loss') : null,
    losses.length ? svg : null,
    h('h4', {}, 'Summary'), kvTable(Object.fromEntries(Object.entries(j.summary).filter(([k]) => !k.endsWith('losses'))), 'summary'),
    h('h4', {}, 'Latest events'),
    h('pre', { class: 'jp-cellops-json' }, events.map(e => JSON.stringify(e)).join('\n') || '(no events yet)'));
}

export function renderArtifact(kind: ArtifactKind, v: ArtifactVersion, a: Actions, now = Date.now()): HTMLElement {
  const insert = kind === 'model' ? modelCell(v.ref) : kind === 'dataset' ? datasetCell(v.ref) : null;
  return h('div', { class: 'jp-cellops-detail' },
    header(`${kind} ${v.ref}`, a),
    h('div', { class: 'jp-cellops-meta' }, `${formatBytes(v.size_bytes)} in ${v.files} files · ${v.hash.slice(0, 10)} · ${formatAgo(v.created_at, now)}`),
    insert ? button('insert cell', `Insert a cell that uses ${v.ref}`, () => a.insert(insert)) : null,
    kind !== 'index' ? h('h4', {}, kind === 'model' ? 'Model card' : 'Dataset card') : null,
    kind !== 'index' ? kvTable(v.card ?? null, 'card') : null,
    h('h4', {}, 'Version content'), kvTable(v.content, 'content'));
}
