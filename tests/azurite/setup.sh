#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator, from npm) for the Azure Blob tests, into
# .azurite (set KFP_INTEROP_AZURITE_DIR to put it elsewhere). Needs node and npm: installed
# from Debian's packages when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${KFP_INTEROP_AZURITE_DIR:-.azurite}"
version=3.37.0
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
  else
    echo "tests/azurite/setup.sh: Azurite needs node and npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
if [ ! -x "$dir/node_modules/.bin/azurite-blob" ] || \
   ! grep -q "\"version\": \"$version\"" "$dir/node_modules/azurite/package.json"; then
  npm install --silent --no-audit --no-fund --prefix "$dir" "azurite@$version" >&2
fi
echo "azurite ready: $dir/node_modules/.bin/azurite-blob"
