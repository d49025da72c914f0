import { TraceDetail, TraceSpan, isRunning, kindClass, loadTraces, spanDetail, spanTree, waterfallRows } from '../traces';
import { TraceActions, renderTrace, renderTraceSection } from '../traceview';

const span = (id: string, parent: string | null, name: string, kind: string, start: number, end: number | null,
  over: Partial<TraceSpan> = {}): TraceSpan => ({
  trace_id: 't1', span_id: id, parent_id: parent, name, kind, start, end, status: 'ok', attributes: {}, events: [], ...over
});

// a chain (0..10 s): step a (0..4) with an llm child (1..3), step b (5..10) that failed
const SPANS: TraceSpan[] = [
  span('b', 'root', 'b', 'step', 105, 110, {
    status: 'error', attributes: { error: 'ValueError: bad' },
    events: [{ name: 'exception', attributes: { 'exception.type': 'ValueError', 'exception.message': 'bad', 'exception.stacktrace': 'Traceback ...\nValueError: bad' } }]
  }),
  span('root', null, 'qa@1', 'chain', 100, 110),
  span('l', 'a', 'generate', 'llm', 101, 103, {
    attributes: { 'input.value': '<img src=x onerror=alert(1)>', 'output.value': 'hi', 'gen_ai.usage.output_tokens': 2 }
  }),
  span('a', 'root', 'a', 'step', 100, 104)
];
const TRACE: TraceDetail = { trace_id: 't1', name: 'qa@1', summary: null, spans: SPANS };

function actions(): TraceActions & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    openTrace: id => calls.push(`openTrace(${id})`),
    openSpan: id => calls.push(`openSpan(${id})`),
    filterTraces: f => calls.push(`filter(${f.name},${f.status})`),
    back: () => calls.push('back')
  };
}

describe('waterfall layout', () => {
  it('nests children under parents by start time', () => {
    expect(spanTree(SPANS).map(r => `${r.depth}:${r.span.name}`)).toEqual(['0:qa@1', '1:a', '2:generate', '1:b']);
  });
  it('places bars in percent of the whole trace', () => {
    const rows = waterfallRows(SPANS);
    const byName = Object.fromEntries(rows.map(r => [r.span.name, r]));
    expect([byName['qa@1'].left, byName['qa@1'].width]).toEqual([0, 100]);
    expect([byName.generate.left, byName.generate.width]).toEqual([10, 20]);
    expect([byName.b.left, byName.b.width, byName.b.ms]).toEqual([50, 50, 5000]);
  });
  it('stretches running spans to now and knows the trace runs', () => {
    const live = [span('r', null, 'run', 'chain', 0, null), span('s', 'r', 's', 'step', 0, 1)];
    const rows = waterfallRows(live, 4);
    expect(rows.map(r => [r.width, r.ms])).toEqual([[100, null], [25, 1000]]);
    expect(isRunning({ ...TRACE, spans: live })).toBe(true);
    expect(isRunning(TRACE)).toBe(false);
  });
  it('survives a stored cycle and unknown kinds', () => {
    const cyc = [span('x', 'y', 'x', 'step', 0, 1), span('y', 'x', 'y', 'weird', 0, 1)];
    expect(spanTree(cyc)).toEqual([]); // no root: nothing to walk, and no endless loop
    expect(kindClass('weird')).toBe('other');
    expect(kindClass('llm')).toBe('llm');
  });
});

describe('span details', () => {
  it('splits inputs, outputs, attributes, events and errors', () => {
    const d = spanDetail(SPANS[0]);
    expect(d.errors).toEqual(['ValueError: bad']);
    expect(d.events).toEqual([{ name: 'exception', text: 'Traceback ...\nValueError: bad', error: true }]);
    const l = spanDetail(SPANS[2]);
    expect([l.input, l.output]).toEqual(['<img src=x onerror=alert(1)>', 'hi']);
    expect(l.attributes).toEqual([['gen_ai.usage.output_tokens', '2']]);
    expect(l.errors).toEqual([]);
  });
});

describe('rendering', () => {
  it('draws coloured nested bars and opens a span', () => {
    const a = actions();
    const el = renderTrace(TRACE, 'l', a, 200_000);
    const rows = Array.from(el.querySelectorAll('[data-testid="span-row"]')) as HTMLElement[];
    expect(rows.map(r => r.dataset.kind)).toEqual(['chain', 'step', 'llm', 'step']);
    const bar = rows[2].querySelector('.jp-cellops-wf-bar') as HTMLElement;
    expect(bar.className).toContain('jp-cellops-kind-llm');
    expect([bar.style.left, bar.style.width]).toEqual(['10.00%', '20.00%']);
    expect((rows[2].querySelector('.jp-cellops-wf-name') as HTMLElement).style.paddingLeft).toBe('20px');
    expect(rows[3].className).toContain('jp-cellops-status-error');
    // the selected span's input is text: the markup shows as characters, no element is made
    expect(el.querySelector('[data-testid="span-input"]')?.textContent).toBe('<img src=x onerror=alert(1)>');
    expect(el.querySelector('img')).toBeNull();
    rows[3].click();
    expect(a.calls).toEqual(['openSpan(b)']);
    const err = renderTrace(TRACE, 'b', a, 200_000);
    expect(err.querySelector('[role="alert"]')?.textContent).toBe('ValueError: bad');
  });
  it('lists traces with a filter that reports what was picked', () => {
    const a = actions();
    const sum = { trace_id: 'abc', name: '<b>x</b>', kind: 'chain', status: 'ok', start: 0, end: 1, spans: 3,
      input_tokens: 4, output_tokens: 5, run_id: null, duration_s: 1.5 };
    const el = renderTraceSection([sum], { name: '', status: '' }, null, a, 0);
    const row = el.querySelector('[data-testid="trace-abc"]') as HTMLElement;
    expect(row.textContent).toContain('<b>x</b>');
    expect(row.textContent).toContain('1.50 s · 3 spans · 4+5 tokens');
    expect(row.querySelector('b')).toBeNull();
    row.click();
    const name = el.querySelector('[data-testid="trace-filter-name"]') as HTMLInputElement;
    name.value = 'rag*';
    name.dispatchEvent(new Event('change'));
    const status = el.querySelector('[data-testid="trace-filter-status"]') as HTMLSelectElement;
    status.value = 'error';
    status.dispatchEvent(new Event('change'));
    expect(a.calls).toEqual(['openTrace(abc)', 'filter(rag*,)', 'filter(rag*,error)']);
    const none = renderTraceSection([], { name: 'zz', status: '' }, null, a, 0);
    expect(none.textContent).toContain('No trace matches this filter.');
  });
  it('asks the server with the filter', async () => {
    const asked: unknown[] = [];
    await loadTraces(async (e, q) => { asked.push([e, q]); return []; }, 'sub', { name: ' rag* ', status: 'ok' });
    expect(asked).toEqual([['traces', { dir: 'sub', name: 'rag*', status: 'ok', limit: 30 }]]);
  });
});
