/**
 * Fetching the workspace through an injected fetcher (ServerConnection in the app, a fake in
 * tests). One failing list must not blank the others, but a workspace-level error (corrupt
 * database) is shown once, as the panel's error line.
 */
import { Job, PromptDetail, RunSummary, WorkspaceData } from './model';

export type Query = Record<string, string | number | undefined | null>;
export type Fetcher = (endpoint: string, query?: Query) => Promise<unknown>;

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

export interface Loaded {
  data: WorkspaceData;
  error: string | null;
}

export async function loadWorkspace(fetch: Fetcher, dir: string): Promise<Loaded> {
  const q = { dir };
  let status;
  try {
    status = (await fetch('status', q)) as WorkspaceData['status'];
  } catch (e) {
    return { data: emptyData(), error: errorText(e) };
  }
  const names = ['prompts', 'runs', 'indexes', 'models', 'datasets', 'jobs', 'schedules'] as const;
  const results = await Promise.allSettled(
    names.map(n => fetch(n, n === 'runs' ? { ...q, limit: 30 } : q))
  );
  const data = emptyData();
  data.status = status;
  const errors: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      (data as unknown as Record<string, unknown>)[names[i]] = r.value;
    } else {
      errors.push(`${names[i]}: ${errorText(r.reason)}`);
    }
  });
  return { data, error: errors.length ? errors.join('; ') : null };
}

export function loadPrompt(fetch: Fetcher, dir: string, name: string): Promise<PromptDetail> {
  return fetch(`prompts/${encodeURIComponent(name)}`, { dir }) as Promise<PromptDetail>;
}

export async function loadDiff(
  fetch: Fetcher,
  dir: string,
  name: string,
  a: number,
  b: number
): Promise<string> {
  const r = (await fetch(`prompts/${encodeURIComponent(name)}/diff`, { dir, a, b })) as {
    diff: string;
  };
  return r.diff;
}

export function loadRun(fetch: Fetcher, dir: string, id: string): Promise<RunSummary> {
  return fetch(`runs/${encodeURIComponent(id)}`, { dir }) as Promise<RunSummary>;
}

export function loadJob(fetch: Fetcher, dir: string, id: string): Promise<Job> {
  return fetch(`jobs/${encodeURIComponent(id)}`, { dir, since: 0 }) as Promise<Job>;
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    return e.message;
  }
  return String(e);
}

function emptyData(): WorkspaceData {
  return {
    status: { workspace: '', exists: false, counts: {} },
    prompts: [],
    runs: [],
    indexes: [],
    models: [],
    datasets: [],
    jobs: [],
    schedules: []
  };
}
