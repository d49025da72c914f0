import {
  buildQuery,
  diffLines,
  formatAgo,
  formatBytes,
  kvRows,
  modelCell,
  notebookDir,
  pollInterval,
  progressLabel,
  promptCell,
  promptRunCell,
  quoteArg,
  sparklinePath,
  EMPTY,
  Job
} from '../model';

const job = (over: Partial<Job> = {}): Job => ({
  id: 'j1', name: 'tiny', version: null, created_at: 0, status: 'running', running: true,
  progress: 0.5, step: 5, max_steps: 10, loss: 2.5, summary: {}, ...over
});

describe('queries and paths', () => {
  it('drops empty values and sorts keys', () => {
    expect(buildQuery({ dir: '', b: 2, a: 'x y', c: undefined })).toBe('?a=x%20y&b=2');
    expect(buildQuery({})).toBe('');
  });
  it('finds the folder of a notebook', () => {
    expect(notebookDir('a/b/c.ipynb')).toBe('a/b');
    expect(notebookDir('c.ipynb')).toBe('');
    expect(notebookDir('RTC:work/n.ipynb')).toBe('work');
    expect(notebookDir(undefined)).toBe('');
  });
});

describe('formatting', () => {
  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB');
    expect(formatBytes(null)).toBe('-');
  });
  it('formats ages from unix seconds', () => {
    const now = 1_000_000 * 1000;
    expect(formatAgo(1_000_000 - 10, now)).toBe('just now');
    expect(formatAgo(1_000_000 - 300, now)).toBe('5 min ago');
    expect(formatAgo(1_000_000 - 7200, now)).toBe('2 h ago');
    expect(formatAgo(1_000_000 - 3 * 86400, now)).toBe('3 d ago');
  });
  it('labels job progress', () => {
    expect(progressLabel(job())).toBe('running 50% · step 5/10 · loss 2.50');
    expect(progressLabel(job({ status: 'done', progress: 1, step: 10, loss: null }))).toBe('done 100% · step 10/10');
    expect(progressLabel(job({ progress: null, max_steps: null, step: 0, loss: null }))).toBe('running');
  });
  it('polls fast only while a job runs', () => {
    expect(pollInterval(null)).toBe(10000);
    expect(pollInterval({ ...EMPTY, jobs: [job()] })).toBe(2000);
    expect(pollInterval({ ...EMPTY, jobs: [job({ running: false })] })).toBe(10000);
  });
  it('sorts and formats key/value rows', () => {
    expect(kvRows({ b: 0.123456, a: 3, c: { x: 1 } })).toEqual([['a', '3'], ['b', '0.123'], ['c', '{"x":1}']]);
  });
});

describe('cells inserted into the notebook', () => {
  it('recreates a prompt version as a %%prompt cell', () => {
    const cell = promptCell({ name: 'greet', template: 'Say hi to {{ name }}', system: 'Be brief.',
      params: { max_tokens: 8, temperature: 0.2, model: 'default', unknown: 1 } });
    expect(cell).toBe('%%prompt greet --system "Be brief." --model default --temperature 0.2 --max-tokens 8\nSay hi to {{ name }}');
  });
  it('quotes arguments only when needed', () => {
    expect(quoteArg('tuned@2')).toBe('tuned@2');
    expect(quoteArg('say "hi"')).toBe('"say \\"hi\\""');
  });
  it('pins versions in run and model cells', () => {
    expect(promptRunCell('greet@3')).toBe('%prompt run greet@3');
    expect(modelCell('tuned@1')).toContain('model="tuned@1"');
  });
});

describe('diff and sparkline', () => {
  it('classifies unified diff lines', () => {
    const kinds = diffLines('--- a@1\n+++ a@2\n@@ -1 +1 @@\n-old\n+new\n same').map(l => l.kind);
    expect(kinds).toEqual(['file', 'file', 'hunk', 'del', 'add', 'ctx']);
    expect(diffLines('')).toEqual([]);
  });
  it('scales points into the box, highest value at the top', () => {
    expect(sparklinePath([[0, 3], [1, 2], [2, 1]], 100, 10)).toBe('M0.0 0.0 L50.0 5.0 L100.0 10.0');
    expect(sparklinePath([[5, 1]], 100, 10)).toBe('M50.0 5.0');
    expect(sparklinePath([], 100, 10)).toBe('');
  });
});
