/** The real fetcher: Jupyter's ServerConnection (adds the token / XSRF headers). */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, Fetcher, Query } from './load';
import { buildQuery } from './model';

export function makeFetcher(settings?: ServerConnection.ISettings): Fetcher {
  const s = settings ?? ServerConnection.makeSettings();
  return async (endpoint: string, query: Query = {}) => {
    const url = URLExt.join(s.baseUrl, 'cellops', 'api', endpoint) + buildQuery(query);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, {}, s);
    } catch (e) {
      throw new ApiError(`cannot reach the Jupyter server: ${String(e)}`, 0);
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const msg =
        (body as { error?: string; message?: string } | null)?.error ??
        (body as { message?: string } | null)?.message ??
        `${response.status} ${response.statusText}`;
      throw new ApiError(msg, response.status);
    }
    return body;
  };
}
