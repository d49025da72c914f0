#!/usr/bin/env bash
# Build the cellops JupyterLab extension into src/cellops/labextension (prebuilt, shipped in the
# wheel). Needs Node >= 20 and the npm registry; run it before `pip install -e .` / `pip install .`.
# Offline-safe: @jupyter/builder + @jupyterlab/core-meta come from npm, nothing from GitHub.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
else
  npm install --prefer-offline --no-audit --no-fund --loglevel=error
fi
npm run build
test -f ../src/cellops/labextension/package.json
echo "cellops labextension built in src/cellops/labextension"
