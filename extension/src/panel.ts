/**
 * The sidebar widget: holds the view state (lists or one item), fetches, re-renders, and
 * polls while it is visible (every 2 s while a fine-tuning job runs, every 10 s otherwise).
 */
import { Widget } from '@lumino/widgets';

import { Fetcher, errorText, loadDiff, loadJob, loadPrompt, loadRun, loadWorkspace } from './load';
import { EMPTY, PromptDetail, WorkspaceData, pollInterval } from './model';
import { Actions, ArtifactKind, renderArtifact, renderError, renderJob, renderLists, renderPrompt, renderRun, h } from './render';
import { TraceDetail, TraceFilter, isRunning, loadTrace, loadTraces } from './traces';
import { TraceActions, renderTrace, renderTraceSection } from './traceview';

type View =
  | { kind: 'lists' }
  | { kind: 'prompt'; name: string }
  | { kind: 'run'; id: string }
  | { kind: 'job'; id: string }
  | { kind: 'artifact'; what: ArtifactKind; ref: string }
  | { kind: 'trace'; id: string; span: string | null };

export class CellopsPanel extends Widget {
  private view: View = { kind: 'lists' };
  private data: WorkspaceData = EMPTY;
  private diff = { a: 0, b: 0, text: null as string | null };
  private timer: number | null = null;
  private busy = false;
  private again = false; // a refresh asked for while one runs (a filter change) runs after it
  private traceFilter: TraceFilter = { name: '', status: '' };
  private trace: TraceDetail | null = null;
  private body: HTMLElement;
  private where: HTMLElement;
  readonly actions: Actions;
  readonly traceActions: TraceActions;

  constructor(
    private readonly fetch: Fetcher,
    private readonly insertCell: (code: string) => void,
    private dir: string = ''
  ) {
    super();
    this.id = 'cellops-sidebar';
    this.addClass('jp-cellops-panel');
    this.title.caption = 'cellops workspace';
    const refresh = h('button', { class: 'jp-cellops-btn', title: 'Refresh', type: 'button' }, '⟳');
    refresh.addEventListener('click', () => void this.refresh());
    this.where = h('span', { class: 'jp-cellops-where' });
    this.body = h('div', { class: 'jp-cellops-body' });
    this.node.append(h('div', { class: 'jp-cellops-head' }, h('b', {}, 'cellops'), this.where, refresh), this.body);
    const go = (v: View) => {
      this.view = v;
      void this.refresh();
    };
    this.actions = {
      refresh: () => void this.refresh(),
      back: () => go({ kind: 'lists' }),
      openPrompt: name => {
        this.diff = { a: 0, b: 0, text: null };
        go({ kind: 'prompt', name });
      },
      openRun: id => go({ kind: 'run', id }),
      openJob: id => go({ kind: 'job', id }),
      openArtifact: (what, ref) => go({ kind: 'artifact', what, ref }),
      diff: (_name, a, b) => {
        this.diff = { a, b, text: null };
        void this.refresh();
      },
      insert: code => this.insertCell(code)
    };
    this.traceActions = {
      openTrace: id => {
        this.trace = null;
        go({ kind: 'trace', id, span: null });
      },
      openSpan: span => {
        if (this.view.kind === 'trace' && this.trace) {
          this.view = { ...this.view, span }; // same data: re-render without a fetch
          this.body.replaceChildren(renderTrace(this.trace, span, this.traceActions));
        }
      },
      filterTraces: f => {
        this.traceFilter = f;
        void this.refresh();
      },
      back: () => go({ kind: 'lists' })
    };
  }

  /** The folder whose .cellops is shown (the current notebook's folder). */
  setDir(dir: string): void {
    if (dir !== this.dir) {
      this.dir = dir;
      this.view = { kind: 'lists' };
      void this.refresh();
    }
  }

  async refresh(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      this.where.textContent = this.dir ? `${this.dir}/.cellops` : '.cellops';
      this.body.replaceChildren(await this.renderView());
    } finally {
      this.busy = false;
      this.schedule();
    }
    if (this.again) {
      this.again = false;
      void this.refresh();
    }
  }

  private async renderView(): Promise<HTMLElement> {
    const v = this.view;
    try {
      if (v.kind === 'prompt') {
        const d: PromptDetail = await loadPrompt(this.fetch, this.dir, v.name);
        const n = d.versions.length;
        if (n > 1 && this.diff.text === null) {
          if (!this.diff.a) {
            this.diff = { a: d.versions[n - 2].version, b: d.versions[n - 1].version, text: null };
          }
          this.diff.text = await loadDiff(this.fetch, this.dir, v.name, this.diff.a, this.diff.b);
        }
        return renderPrompt(d, this.diff, this.actions);
      }
      if (v.kind === 'run') {
        return renderRun(await loadRun(this.fetch, this.dir, v.id), this.actions);
      }
      if (v.kind === 'trace') {
        this.trace = await loadTrace(this.fetch, this.dir, v.id);
        return renderTrace(this.trace, v.span, this.traceActions);
      }
      if (v.kind === 'job') {
        return renderJob(await loadJob(this.fetch, this.dir, v.id), this.actions);
      }
      const [loaded, traces] = await Promise.all([
        loadWorkspace(this.fetch, this.dir),
        loadTraces(this.fetch, this.dir, this.traceFilter).then(
          list => ({ list, error: null as string | null }),
          e => ({ list: [], error: errorText(e) }))
      ]);
      this.data = loaded.data;
      if (v.kind === 'artifact') {
        const list = { index: this.data.indexes, model: this.data.models, dataset: this.data.datasets }[v.what];
        const item = list.find(x => x.ref === v.ref);
        if (item) {
          return renderArtifact(v.what, item, this.actions);
        }
        this.view = { kind: 'lists' };
      }
      const lists = renderLists(this.data, loaded.error, this.actions);
      if (this.data.status.exists) {
        lists.append(renderTraceSection(traces.list, this.traceFilter, traces.error, this.traceActions));
      }
      return lists;
    } catch (e) {
      const box = h('div', {}, renderError(errorText(e)));
      box.append(h('button', { class: 'jp-cellops-btn', type: 'button' }, '‹ back'));
      box.lastElementChild?.addEventListener('click', () => this.actions.back());
      return box;
    }
  }

  private schedule(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    if (this.isDisposed) {
      return;
    }
    const running = this.view.kind === 'job' || this.data.jobs.some(j => j.running) ||
      (this.view.kind === 'trace' && isRunning(this.trace)); // a running trace fills in live
    const ms = running ? 2000 : pollInterval(this.data);
    this.timer = window.setTimeout(() => {
      const typing = document.activeElement instanceof HTMLInputElement && this.node.contains(document.activeElement);
      if (this.isVisible && !typing) { // re-rendering would drop what is being typed in a filter
        void this.refresh();
      } else {
        this.schedule();
      }
    }, ms);
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  dispose(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    super.dispose();
  }
}
