/**
 * DOM of the Traces panel: the filterable trace list, one trace's waterfall (nested timed bars
 * coloured by kind) and the selected span's details. Every workspace value goes in as text
 * (h() makes text nodes), never as HTML; bar offsets are numbers we compute.
 */
import { formatAgo } from './model';
import { h, renderError } from './render';
import {
  MAX_WATERFALL_ROWS,
  TraceDetail,
  TraceFilter,
  TraceSpan,
  TraceSummary,
  formatMs,
  kindClass,
  spanDetail,
  tokenText,
  waterfallRows
} from './traces';

export interface TraceActions {
  openTrace(id: string): void;
  openSpan(spanId: string): void;
  filterTraces(f: TraceFilter): void;
  back(): void;
}

const STATUSES = ['', 'ok', 'error', 'unset'];

function filterBar(f: TraceFilter, a: TraceActions): HTMLElement {
  const name = h('input', {
    class: 'jp-cellops-trace-filter', type: 'search', placeholder: 'name: prompt, rag*, qa@1',
    'data-testid': 'trace-filter-name', 'aria-label': 'Filter traces by name'
  }) as HTMLInputElement;
  name.value = f.name;
  const status = h('select', { 'data-testid': 'trace-filter-status', 'aria-label': 'Filter traces by status' }) as HTMLSelectElement;
  for (const s of STATUSES) {
    const o = h('option', { value: s }, s || 'any status') as HTMLOptionElement;
    o.selected = s === f.status;
    status.append(o);
  }
  // "change" fires on Enter / leaving the field, so typing does not refetch on every key
  const apply = () => a.filterTraces({ name: name.value, status: status.value });
  name.addEventListener('change', apply);
  status.addEventListener('change', apply);
  return h('div', { class: 'jp-cellops-trace-filters' }, name, status);
}

export function renderTraceSection(
  traces: TraceSummary[], f: TraceFilter, error: string | null, a: TraceActions, now = Date.now()
): HTMLElement {
  const rows = traces.map(t => {
    const r = h('li', { class: 'jp-cellops-row jp-cellops-clickable', 'data-testid': `trace-${t.trace_id}` },
      h('span', { class: 'jp-cellops-name' }, t.name),
      h('span', { class: `jp-cellops-kindchip jp-cellops-kind-${kindClass(t.kind)}` }, t.kind),
      h('span', { class: `jp-cellops-status jp-cellops-status-${t.status}` }, t.status),
      h('span', { class: 'jp-cellops-meta' },
        [formatMs(t.duration_s === null ? null : t.duration_s * 1000), `${t.spans} spans`, tokenText(t),
          formatAgo(t.start, now)].filter(Boolean).join(' · ')));
    r.addEventListener('click', () => a.openTrace(t.trace_id));
    return r;
  });
  const filtered = f.name.trim() || f.status;
  const empty = filtered ? 'No trace matches this filter.' : 'No traces yet: run a %%prompt, %%rag ask or %chain run.';
  return h('details', { class: 'jp-cellops-section', 'data-section': 'traces', open: '' },
    h('summary', {}, 'Traces', h('span', { class: 'jp-cellops-count' }, String(traces.length))),
    filterBar(f, a),
    error ? renderError(error) : null,
    rows.length ? h('ul', { class: 'jp-cellops-list' }, ...rows) : h('div', { class: 'jp-cellops-empty' }, empty));
}

function waterfall(t: TraceDetail, selected: string | null, a: TraceActions, nowS: number): HTMLElement {
  const all = waterfallRows(t.spans, nowS);
  const box = h('div', { class: 'jp-cellops-wf', 'data-testid': 'waterfall' });
  for (const r of all.slice(0, MAX_WATERFALL_ROWS)) {
    const bar = h('span', { class: `jp-cellops-wf-bar jp-cellops-kind-${kindClass(r.span.kind)}` });
    bar.style.left = `${r.left.toFixed(2)}%`;
    bar.style.width = `${r.width.toFixed(2)}%`;
    const name = h('span', { class: 'jp-cellops-wf-name', title: `${r.span.name} (${r.span.kind})` }, r.span.name);
    name.style.paddingLeft = `${r.depth * 10}px`;
    const cls = ['jp-cellops-wf-row', 'jp-cellops-clickable'];
    if (r.span.span_id === selected) {
      cls.push('jp-cellops-wf-selected');
    }
    if (r.span.status === 'error') {
      cls.push('jp-cellops-status-error');
    }
    const row = h('div', { class: cls.join(' '), 'data-testid': 'span-row', 'data-span-id': r.span.span_id, 'data-kind': kindClass(r.span.kind) },
      name, h('span', { class: 'jp-cellops-wf-track' }, bar), h('span', { class: 'jp-cellops-wf-ms' }, formatMs(r.ms)));
    row.addEventListener('click', () => a.openSpan(r.span.span_id));
    box.append(row);
  }
  if (all.length > MAX_WATERFALL_ROWS) {
    box.append(h('div', { class: 'jp-cellops-meta' }, `... ${all.length - MAX_WATERFALL_ROWS} more spans: %trace show has them all`));
  }
  return box;
}

function pre(text: string, testid: string): HTMLElement {
  return h('pre', { class: 'jp-cellops-json', 'data-testid': testid }, text);
}

export function renderSpanDetail(s: TraceSpan): HTMLElement {
  const d = spanDetail(s);
  const ms = s.end === null ? null : (s.end - s.start) * 1000;
  return h('div', { class: 'jp-cellops-span-detail', 'data-testid': 'span-detail' },
    h('h4', {}, s.name),
    h('div', { class: 'jp-cellops-meta' }, `${s.kind} · ${s.status} · ${formatMs(ms)} · span ${s.span_id} · parent ${s.parent_id ?? '-'}`),
    ...d.errors.map(e => renderError(e)),
    d.input !== null ? h('b', {}, 'Input') : null,
    d.input !== null ? pre(d.input, 'span-input') : null,
    d.output !== null ? h('b', {}, 'Output') : null,
    d.output !== null ? pre(d.output, 'span-output') : null,
    h('b', {}, 'Attributes'),
    d.attributes.length
      ? h('table', { class: 'jp-cellops-kv', 'data-testid': 'span-attributes' },
        ...d.attributes.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))
      : h('div', { class: 'jp-cellops-empty' }, '(none)'),
    d.events.length ? h('b', {}, 'Events') : null,
    ...d.events.map(e => h('div', { class: e.error ? 'jp-cellops-wf-event jp-cellops-status-error' : 'jp-cellops-wf-event', 'data-testid': 'span-event' },
      h('span', { class: 'jp-cellops-name' }, e.name), pre(e.text, 'span-event-body'))));
}

export function renderTrace(t: TraceDetail, selected: string | null, a: TraceActions, now = Date.now()): HTMLElement {
  const span = t.spans.find(s => s.span_id === selected) ?? null;
  const sm = t.summary;
  const meta = sm
    ? [sm.kind, sm.status, formatMs(sm.duration_s === null ? null : sm.duration_s * 1000), `${sm.spans} spans`, tokenText(sm),
      formatAgo(sm.start, now), sm.run_id ? `run ${sm.run_id}` : ''].filter(Boolean).join(' · ')
    : `${t.spans.length} spans`;
  const back = h('button', { class: 'jp-cellops-btn', title: 'Back to the lists', type: 'button' }, '‹ back');
  back.addEventListener('click', () => a.back());
  return h('div', { class: 'jp-cellops-detail', 'data-testid': 'trace-detail' },
    h('div', { class: 'jp-cellops-detail-head' }, back, h('h3', {}, `trace ${t.name}`)),
    h('div', { class: 'jp-cellops-meta' }, `${t.trace_id} · ${meta}`),
    h('div', { class: 'jp-cellops-wf-legend' }, ...Array.from(new Set(t.spans.map(s => kindClass(s.kind)))).map(k =>
      h('span', { class: `jp-cellops-kindchip jp-cellops-kind-${k}` }, k))),
    waterfall(t, selected, a, now / 1000),
    span ? renderSpanDetail(span) : h('div', { class: 'jp-cellops-empty' }, 'Click a span to see its inputs, outputs, attributes, events and errors.'));
}
