/**
 * cellops JupyterLab extension: a left sidebar listing the workspace of the current notebook's
 * folder (prompts, runs, indexes, models, fine-tuning jobs, schedules), with detail views and
 * "insert cell" actions, refreshed after each executed cell and while jobs run.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { makeFetcher } from './api';
import { notebookDir } from './model';
import { CellopsPanel } from './panel';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
  '<rect x="3" y="3" width="8" height="8" rx="1.5"/><rect x="13" y="3" width="8" height="8" rx="1.5" opacity=".6"/>' +
  '<rect x="3" y="13" width="8" height="8" rx="1.5" opacity=".6"/><rect x="13" y="13" width="8" height="8" rx="1.5"/></g></svg>';

export const cellopsIcon = new LabIcon({ name: 'cellops:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:sidebar',
  description: 'cellops workspace sidebar',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, shell: ILabShell, notebooks: INotebookTracker, palette: ICommandPalette | null) => {
    const insert = (code: string) => {
      const nb = notebooks.currentWidget;
      if (!nb) {
        console.warn('cellops: open a notebook to insert a cell');
        return;
      }
      NotebookActions.insertBelow(nb.content);
      const cell = nb.content.activeCell;
      if (cell) {
        cell.model.sharedModel.setSource(code);
      }
      shell.activateById(nb.id);
    };
    const panel = new CellopsPanel(makeFetcher(), insert);
    panel.title.icon = cellopsIcon;
    panel.title.label = '';
    shell.add(panel, 'left', { rank: 650 });

    notebooks.currentChanged.connect((_, nb) => panel.setDir(notebookDir(nb?.context.path)));
    let pending: number | null = null;
    NotebookActions.executed.connect(() => {
      // several cells finish together in "run all": refresh once after they settle
      if (pending !== null) {
        window.clearTimeout(pending);
      }
      pending = window.setTimeout(() => {
        pending = null;
        if (panel.isVisible) {
          void panel.refresh();
        }
      }, 300);
    });

    app.commands.addCommand('cellops:open', {
      label: 'cellops: Show Workspace',
      execute: () => shell.activateById(panel.id)
    });
    app.commands.addCommand('cellops:refresh', {
      label: 'cellops: Refresh Workspace',
      execute: () => panel.refresh()
    });
    palette?.addItem({ command: 'cellops:open', category: 'cellops' });
    palette?.addItem({ command: 'cellops:refresh', category: 'cellops' });
  }
};

export default plugin;
