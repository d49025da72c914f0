/**
 * Pure logic of the Traces panel: the stored-trace JSON (tracking/traces.py `to_dict`), the
 * waterfall layout (nested rows, bar offsets in percent of the trace's span of time) and the
 * parts of a span's details. No DOM and no JupyterLab imports, so jest tests it directly.
 */

export const SPAN_KINDS = ['chain', 'llm', 'retriever', 'embedding', 'guard', 'tool', 'reranker', 'step'] as const;

export interface TraceSummary {
  trace_id: string;
  name: string;
  kind: string;
  status: string;
  start: number;
  end: number | null;
  spans: number;
  input_tokens: number;
  output_tokens: number;
  run_id: string | null;
  duration_s: number | null;
}

export interface SpanEvent {
  name: string;
  timestamp?: number;
  attributes: Record<string, unknown>;
}

export interface TraceSpan {
  trace_id: string;
  span_id: string;
  parent_id: string | null;
  name: string;
  kind: string;
  start: number;
  end: number | null;
  status: string;
  attributes: Record<string, unknown>;
  events: SpanEvent[];
}

export interface TraceDetail {
  trace_id: string;
  name: string;
  summary: TraceSummary | null;
  spans: TraceSpan[];
}

export interface TraceFilter {
  name: string;
  status: string;
}

export interface WaterfallRow {
  span: TraceSpan;
  depth: number;
  left: number; // percent of the trace's time from its first start
  width: number; // percent, at least 0.5 so an instant span stays visible
  ms: number | null; // null while the span runs
}

export const MAX_WATERFALL_ROWS = 400; // as the static waterfall: a big grid shows its first rows

/** A kind as a CSS class suffix: one of the eight kinds, anything else is "other". */
export function kindClass(kind: string): string {
  return (SPAN_KINDS as readonly string[]).includes(kind) ? kind : 'other';
}

/** Each span followed by its children by start time; a span whose parent is absent is a root. */
export function spanTree(spans: TraceSpan[]): { span: TraceSpan; depth: number }[] {
  const ids = new Set(spans.map(s => s.span_id));
  const kids = new Map<string | null, TraceSpan[]>();
  for (const s of spans) {
    const p = s.parent_id !== null && ids.has(s.parent_id) ? s.parent_id : null;
    kids.set(p, [...(kids.get(p) ?? []), s]);
  }
  const out: { span: TraceSpan; depth: number }[] = [];
  const seen = new Set<string>();
  const walk = (parent: string | null, depth: number) => {
    for (const s of [...(kids.get(parent) ?? [])].sort((a, b) => a.start - b.start)) {
      if (!seen.has(s.span_id)) {
        seen.add(s.span_id); // a stored cycle (damaged workspace) must not hang the browser
        out.push({ span: s, depth });
        walk(s.span_id, depth + 1);
      }
    }
  };
  walk(null, 0);
  return out;
}

/** Waterfall rows; a running span (no end) reaches up to ``nowS``. */
export function waterfallRows(spans: TraceSpan[], nowS: number = Date.now() / 1000): WaterfallRow[] {
  if (!spans.length) {
    return [];
  }
  const endOf = (s: TraceSpan) => (s.end === null ? Math.max(nowS, s.start) : s.end);
  const t0 = Math.min(...spans.map(s => s.start));
  const t1 = Math.max(...spans.map(endOf));
  const total = Math.max(t1 - t0, 1e-6);
  return spanTree(spans).map(({ span, depth }) => {
    const left = (100 * (span.start - t0)) / total;
    const width = Math.min(Math.max(0.5, (100 * (endOf(span) - span.start)) / total), 100 - left);
    return { span, depth, left, width, ms: span.end === null ? null : (span.end - span.start) * 1000 };
  });
}

/** True while any span of the trace has not ended (the panel then polls fast). */
export function isRunning(t: TraceDetail | null): boolean {
  return !!t && t.spans.some(s => s.end === null);
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !isFinite(ms)) {
    return 'running';
  }
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/** "12+34 tokens" when the summary has token counts, else ''. */
export function tokenText(t: { input_tokens: number; output_tokens: number }): string {
  return t.input_tokens || t.output_tokens ? `${t.input_tokens}+${t.output_tokens} tokens` : '';
}

function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export interface SpanDetailParts {
  input: string | null;
  output: string | null;
  attributes: [string, string][];
  events: { name: string; text: string; error: boolean }[];
  errors: string[];
}

/** What the span details show: inputs, outputs, the other attributes, events, errors. */
export function spanDetail(s: TraceSpan): SpanDetailParts {
  const attrs = s.attributes ?? {};
  const io = (k: string) => (k in attrs ? valueText(attrs[k]) : null);
  const attributes = Object.keys(attrs)
    .filter(k => k !== 'input.value' && k !== 'output.value')
    .sort()
    .map(k => [k, valueText(attrs[k])] as [string, string]);
  const events = (s.events ?? []).map(e => {
    const a = e.attributes ?? {};
    const error = e.name === 'exception';
    const text = error && typeof a['exception.stacktrace'] === 'string' ? (a['exception.stacktrace'] as string) : JSON.stringify(a);
    return { name: e.name, text, error };
  });
  const errors: string[] = [];
  for (const e of s.events ?? []) {
    if (e.name === 'exception') {
      const a = e.attributes ?? {};
      errors.push(`${valueText(a['exception.type'] ?? 'error')}: ${valueText(a['exception.message'] ?? '')}`);
    }
  }
  if (s.status === 'error' && !errors.length) {
    errors.push(valueText(attrs['error'] ?? 'status error'));
  }
  return { input: io('input.value'), output: io('output.value'), attributes, events, errors };
}

type TraceFetcher = (endpoint: string, query?: Record<string, string | number | undefined | null>) => Promise<unknown>;

/** Trace summaries of the folder's workspace, newest first, filtered on the server. */
export function loadTraces(fetch: TraceFetcher, dir: string, f: TraceFilter, limit = 30): Promise<TraceSummary[]> {
  return fetch('traces', { dir, name: f.name.trim(), status: f.status, limit }) as Promise<TraceSummary[]>;
}

/** One trace with every span (by id, unique id prefix or run id). */
export function loadTrace(fetch: TraceFetcher, dir: string, id: string): Promise<TraceDetail> {
  return fetch(`traces/${encodeURIComponent(id)}`, { dir }) as Promise<TraceDetail>;
}
