import { Fetcher, loadWorkspace } from '../load';
import { Job, PromptDetail, WorkspaceData, EMPTY } from '../model';
import { Actions, renderArtifact, renderJob, renderLists, renderPrompt, renderRun, scheduleText } from '../render';

function actions(): Actions & { calls: string[] } {
  const calls: string[] = [];
  const rec = (name: string) => (...args: unknown[]) => { calls.push(`${name}(${args.join(',')})`); };
  return {
    calls, refresh: rec('refresh'), back: rec('back'), openPrompt: rec('openPrompt'), openRun: rec('openRun'),
    openJob: rec('openJob'), openArtifact: rec('openArtifact'), diff: rec('diff'), insert: rec('insert')
  };
}

const v = (name: string, version: number) => ({
  name, version, ref: `${name}@${version}`, hash: 'abcdef0123456789', aliases: version === 1 ? ['prod'] : [], created_at: 0
});

const data: WorkspaceData = {
  ...EMPTY,
  status: { workspace: '/x/.cellops', exists: true, counts: { prompt: 2 } },
  prompts: [{ ...v('greet', 2), latest: 2, template: 'Hello {{ name }}', system: null, params: { max_tokens: 8 }, tests: 0, versions: [v('greet', 1), v('greet', 2)] }],
  runs: [{ id: 'r1', kind: 'prompt', name: 'greet', version: 2, status: 'ok', created_at: 0, params: {}, metrics: { latency_s: 0.4 } }],
  models: [{ ...v('tuned', 1), content: {}, size_bytes: 2048, files: 2, path: '/m', card: { base_model: 'default' } }],
  jobs: [{ id: 'j1', name: 'tiny', version: null, created_at: 0, status: 'running', running: true, progress: 0.25, step: 1, max_steps: 4, loss: 3, summary: {} }]
};

describe('renderLists', () => {
  it('lists every kind with counts and wires the actions', () => {
    const a = actions();
    const el = renderLists(data, null, a, 0);
    const count = (id: string) => el.querySelector(`[data-section="${id}"] .jp-cellops-count`)?.textContent;
    expect([count('prompts'), count('runs'), count('indexes'), count('models'), count('jobs'), count('schedules')])
      .toEqual(['1', '1', '0', '1', '1', '0']);
    const row = el.querySelector('[data-testid="prompt-greet"]') as HTMLElement;
    expect(row.textContent).toContain('v2');
    expect(row.textContent).toContain('2 versions');
    row.click();
    (row.querySelector('button') as HTMLElement).click();
    (el.querySelector('[data-testid="job-j1"]') as HTMLElement).click();
    (el.querySelector('[data-testid="model-tuned@1"]') as HTMLElement).click();
    expect(a.calls).toEqual([
      'openPrompt(greet)', 'insert(%%prompt greet --max-tokens 8\nHello {{ name }})', 'openJob(j1)', 'openArtifact(model,tuned@1)'
    ]);
    expect((el.querySelector('.jp-cellops-progress-fill') as HTMLElement).style.width).toBe('25%');
    expect(el.querySelector('[data-section="indexes"]')?.textContent).toContain('No indexes yet');
  });
  it('shows the error line and a hint for a folder without a workspace', () => {
    expect(renderLists(EMPTY, null, actions()).textContent).toContain('No cellops workspace here yet');
    const err = renderLists(EMPTY, 'workspace database x is corrupt; move it aside', actions());
    expect(err.querySelector('[role="alert"]')?.textContent).toContain('move it aside');
    expect(err.querySelectorAll('[data-section]')).toHaveLength(0);
    const partial = renderLists(data, 'jobs: jobs broke', actions());
    expect(partial.querySelector('[role="alert"]')?.textContent).toBe('jobs: jobs broke');
    expect(partial.querySelectorAll('[data-section]')).toHaveLength(7);
  });
});

describe('datasets', () => {
  const ds = {
    ...v('pairs', 1), content: { format: 'preference', rows: 2 }, size_bytes: 512, files: 2, path: '/d',
    card: { rows: 2, bad_count: 1, format: 'preference', description: '<img src=x onerror=alert(1)>' }
  };
  it('lists dataset versions with rows, format and bad rows, and opens their card', () => {
    const a = actions();
    const el = renderLists({ ...data, datasets: [ds] }, null, a, 0);
    expect(el.querySelector('[data-section="datasets"] .jp-cellops-count')?.textContent).toBe('1');
    const row = el.querySelector('[data-testid="dataset-pairs@1"]') as HTMLElement;
    expect(row.textContent).toContain('2 rows · preference · 1 bad');
    (row.querySelector('button') as HTMLElement).click();
    row.click();
    expect(a.calls).toEqual([
      'insert(import cellops\ncellops.datasets.get("pairs@1").to_frame())', 'openArtifact(dataset,pairs@1)'
    ]);
    const card = renderArtifact('dataset', ds, a, 0);
    expect(card.textContent).toContain('Dataset card');
    expect(card.querySelector('img')).toBeNull(); // card values are text, never HTML
    expect(card.querySelector('[data-testid="card"]')?.textContent).toContain('<img src=x onerror=alert(1)>');
  });
  it('says how to make one when there is none', () => {
    expect(renderLists(data, null, actions(), 0).querySelector('[data-section="datasets"]')?.textContent)
      .toContain('No datasets yet (%%dataset NAME saves one).');
  });
});

describe('detail views', () => {
  const detail: PromptDetail = {
    name: 'greet',
    versions: [1, 2].map(n => ({ ...v('greet', n), template: `T${n}`, system: null, params: {}, tests: 0 })),
    runs: []
  };
  it('renders a coloured diff and asks for another pair on change', () => {
    const a = actions();
    const el = renderPrompt(detail, { a: 1, b: 2, text: '--- greet@1\n+++ greet@2\n-T1\n+T2' }, a);
    expect(el.querySelector('.jp-cellops-diff-del')?.textContent).toBe('-T1');
    expect(el.querySelector('.jp-cellops-diff-add')?.textContent).toBe('+T2');
    const [sa] = Array.from(el.querySelectorAll('select')) as HTMLSelectElement[];
    sa.value = '2';
    sa.dispatchEvent(new Event('change'));
    expect(a.calls).toEqual(['diff(greet,2,2)']);
    const runBtn = el.querySelector('[data-testid="version-greet@1"] button[title^="Insert %prompt run"]') as HTMLElement;
    runBtn.click();
    expect(a.calls[1]).toBe('insert(%prompt run greet@1)');
  });
  it('names the tracker run of a run that logged to one', () => {
    const r = { ...data.runs[0], tracker: 'wandb', tracker_run_id: 'ab12cd34' };
    expect(renderRun(r, actions()).querySelector('[data-testid="run-tracker"]')?.textContent).toBe('wandb run ab12cd34');
    expect(renderRun(data.runs[0], actions()).querySelector('[data-testid="run-tracker"]')).toBeNull();
  });
  it('draws the loss curve and progress of a job', () => {
    const j: Job = { ...data.jobs[0], summary: { losses: [[1, 3], [2, 2]], step: 2 }, events: [{ kind: 'log', step: 2 }] };
    const el = renderJob(j, actions());
    expect(el.querySelector('path')?.getAttribute('d')).toBe('M0.0 0.0 L200.0 50.0');
    expect(el.querySelector('[data-testid="job-label"]')?.textContent).toBe('running 25% · step 1/4 · loss 3');
  });
});

describe('loadWorkspace', () => {
  it('keeps the good lists when one endpoint fails', async () => {
    const fetch: Fetcher = async endpoint => {
      if (endpoint === 'status') { return data.status; }
      if (endpoint === 'jobs') { throw new Error('jobs broke'); }
      return (data as unknown as Record<string, unknown>)[endpoint];
    };
    const r = await loadWorkspace(fetch, 'sub');
    expect(r.data.prompts).toHaveLength(1);
    expect(r.data.jobs).toEqual([]);
    expect(r.error).toBe('jobs: jobs broke');
  });
  it('reports a workspace-level error once', async () => {
    const r = await loadWorkspace(async () => { throw new Error('database is corrupt'); }, '');
    expect(r.error).toBe('database is corrupt');
    expect(r.data.prompts).toEqual([]);
  });
});

describe('schedules', () => {
  it('shows trigger, target file and next run or paused', () => {
    expect(scheduleText({ name: 'nightly', trigger: 'cron 0 3 * * *', target: '/w/notebooks/eval.ipynb',
      next_run: '2026-11-26 03:00:00+00:00', paused: false })).toBe('cron 0 3 * * * · eval.ipynb · next 2026-11-26 03:00');
    expect(scheduleText({ name: 'x', trigger: 'every 60s', target: 'a.yaml', next_run: null, paused: true }))
      .toBe('every 60s · a.yaml · paused');
  });
});
