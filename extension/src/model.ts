/**
 * Pure front-end logic of the cellops sidebar: types of the REST payloads, formatting,
 * the cells that "insert" actions put into a notebook, diff colouring and the loss sparkline.
 * No JupyterLab imports here, so jest tests it directly.
 */

export interface VersionHead {
  name: string;
  version: number;
  ref: string;
  hash: string;
  aliases: string[];
  created_at: number;
}

export interface PromptSummary extends VersionHead {
  latest: number;
  template: string;
  system: string | null;
  params: Record<string, unknown>;
  tests: number;
  versions: VersionHead[];
}

export interface RunSummary {
  id: string;
  kind: string;
  name: string | null;
  version: number | null;
  status: string;
  created_at: number;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  model?: string | null;
  source?: string | null;
  output?: string | null;
  tracker?: string | null; // the experiment tracker the run logged to (wandb, a plugin)
  tracker_run_id?: string | null;
  record?: Record<string, unknown>;
}

export interface PromptDetail {
  name: string;
  versions: (VersionHead & {
    template: string;
    system: string | null;
    params: Record<string, unknown>;
    tests: number;
  })[];
  runs: RunSummary[];
}

export interface ArtifactVersion extends VersionHead {
  content: Record<string, unknown>;
  size_bytes: number;
  files: number;
  path: string | null;
  card?: Record<string, unknown> | null;
}

export interface Job {
  id: string;
  name: string | null;
  version: number | null;
  created_at: number;
  status: string;
  running: boolean;
  progress: number | null;
  step: number;
  max_steps: number | null;
  loss: number | null;
  summary: Record<string, unknown>;
  base_model?: string | null;
  output?: string | null;
  events?: Record<string, unknown>[];
  next?: number;
}

/** As the pipelines area lists them: name, trigger ("cron 0 3 * * *" / "every 60s"), target. */
export interface Schedule {
  name?: string;
  trigger?: string;
  target?: string;
  next_run?: string | null;
  paused?: boolean;
  [key: string]: unknown;
}

export interface WorkspaceStatus {
  workspace: string;
  exists: boolean;
  counts: Record<string, number>;
}

export interface WorkspaceData {
  status: WorkspaceStatus;
  prompts: PromptSummary[];
  runs: RunSummary[];
  indexes: ArtifactVersion[];
  models: ArtifactVersion[];
  datasets: ArtifactVersion[];
  jobs: Job[];
  schedules: Schedule[];
}

/** Query string of the defined, non-empty values (keys sorted, so URLs are stable). */
export function buildQuery(params: Record<string, string | number | undefined | null>): string {
  const parts = Object.keys(params)
    .sort()
    .filter(k => params[k] !== undefined && params[k] !== null && params[k] !== '')
    .map(k => `${encodeURIComponent(k)}=${encodeURIComponent(String(params[k]))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The folder of a notebook path ('' for the server root): its kernel's workspace lives there. */
export function notebookDir(path: string | null | undefined): string {
  if (!path) {
    return '';
  }
  const local = path.includes(':') ? path.slice(path.indexOf(':') + 1) : path; // drive prefix
  const i = local.lastIndexOf('/');
  return i < 0 ? '' : local.slice(0, i);
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !isFinite(n)) {
    return '-';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" from unix seconds. */
export function formatAgo(ts: number, nowMs: number = Date.now()): string {
  const s = Math.max(0, nowMs / 1000 - ts);
  if (s < 45) {
    return 'just now';
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `${Math.round(s / 3600)} h ago`;
  }
  return `${Math.round(s / 86400)} d ago`;
}

export function formatNumber(v: unknown): string {
  if (typeof v !== 'number') {
    return v === null || v === undefined ? '-' : String(v);
  }
  if (Number.isInteger(v)) {
    return String(v);
  }
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3);
}

export function progressLabel(job: Job): string {
  const pct = job.progress === null ? '' : ` ${Math.round(job.progress * 100)}%`;
  const steps = job.max_steps ? ` · step ${job.step}/${job.max_steps}` : job.step ? ` · step ${job.step}` : '';
  const loss = job.loss === null || job.loss === undefined ? '' : ` · loss ${formatNumber(job.loss)}`;
  return `${job.status}${pct}${steps}${loss}`;
}

/** Shell-style quoting for a magic's line arguments. */
export function quoteArg(value: string): string {
  return /^[A-Za-z0-9_@.:/=+-]+$/.test(value) ? value : `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

const CELL_PARAM_FLAGS: Record<string, string> = {
  model: '--model',
  temperature: '--temperature',
  top_p: '--top-p',
  max_tokens: '--max-tokens',
  seed: '--seed'
};

/** A `%%prompt NAME` cell that recreates this version (editing it makes the next version). */
export function promptCell(p: {
  name: string;
  template: string;
  system?: string | null;
  params?: Record<string, unknown>;
}): string {
  const args = [p.name];
  if (p.system) {
    args.push('--system', quoteArg(p.system));
  }
  for (const [key, flag] of Object.entries(CELL_PARAM_FLAGS)) {
    const v = p.params?.[key];
    if (v !== undefined && v !== null) {
      args.push(flag, quoteArg(String(v)));
    }
  }
  return `%%prompt ${args.join(' ')}\n${p.template}`;
}

/** A cell that runs one pinned version: `%prompt run NAME@V`. */
export function promptRunCell(ref: string): string {
  return `%prompt run ${ref}`;
}

/** A cell that uses a registered model version through the public API. */
export function modelCell(ref: string): string {
  return `import cellops\ncellops.generate("Hello!", model=${JSON.stringify(ref)}, max_tokens=32)`;
}

/** A cell that loads a dataset version as a DataFrame. */
export function datasetCell(ref: string): string {
  return `import cellops\ncellops.datasets.get(${JSON.stringify(ref)}).to_frame()`;
}

/** "12 rows · preference · 2 bad" for a dataset version. */
export function datasetMeta(v: ArtifactVersion): string {
  const card = (v.card ?? {}) as Record<string, unknown>;
  const rows = Number(v.content.rows ?? card.rows ?? 0);
  const bad = Number(card.bad_count ?? 0);
  return `${rows} row${rows === 1 ? '' : 's'} · ${String(v.content.format ?? '?')}${bad ? ` · ${bad} bad` : ''}`;
}

/** A cell that loads a run's full reproducibility record. */
export function runCell(id: string): string {
  return `import cellops\nrun = cellops.get_workspace().get_run(${JSON.stringify(id)})\nrun["record"]`;
}

export type DiffKind = 'add' | 'del' | 'hunk' | 'file' | 'ctx';

/** Classify unified-diff lines for colouring. */
export function diffLines(text: string): { kind: DiffKind; text: string }[] {
  if (!text) {
    return [];
  }
  return text.split('\n').map(line => {
    let kind: DiffKind = 'ctx';
    if (line.startsWith('+++') || line.startsWith('---')) {
      kind = 'file';
    } else if (line.startsWith('@@')) {
      kind = 'hunk';
    } else if (line.startsWith('+')) {
      kind = 'add';
    } else if (line.startsWith('-')) {
      kind = 'del';
    }
    return { kind, text: line };
  });
}

/** An SVG path ("M x y L ...") through (step, value) points scaled into width x height. */
export function sparklinePath(points: [number, number][], width: number, height: number): string {
  const pts = points.filter(p => isFinite(p[0]) && isFinite(p[1]));
  if (pts.length === 0) {
    return '';
  }
  const xs = pts.map(p => p[0]);
  const ys = pts.map(p => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => (x1 === x0 ? width / 2 : ((x - x0) / (x1 - x0)) * width);
  const sy = (y: number) => (y1 === y0 ? height / 2 : height - ((y - y0) / (y1 - y0)) * height);
  return pts
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)} ${sy(p[1]).toFixed(1)}`)
    .join(' ');
}

/** How often to poll: fast while a job runs, slow otherwise. */
export function pollInterval(data: WorkspaceData | null): number {
  return data && data.jobs.some(j => j.running) ? 2000 : 10000;
}

/** Sorted [key, value] rows of a metrics/params object, values formatted. */
export function kvRows(obj: Record<string, unknown> | null | undefined): [string, string][] {
  if (!obj) {
    return [];
  }
  return Object.keys(obj)
    .sort()
    .map(k => {
      const v = obj[k];
      return [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : formatNumber(v)];
    });
}

export const EMPTY: WorkspaceData = {
  status: { workspace: '', exists: false, counts: {} },
  prompts: [],
  runs: [],
  indexes: [],
  models: [],
  datasets: [],
  jobs: [],
  schedules: []
};
