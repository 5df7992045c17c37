#!/usr/bin/env bash
# Microsoft's Graph beta TypeScript SDK (@microsoft/msgraph-beta-sdk, with
# msgraph-sdk-core's page iterator and batch builder), unchanged but for the
# base URL and the token, over the Agent Registry, agent registrations, the
# package catalog, the Copilot admin settings and JSON batching, on a server
# seeded with examples/seed.json; then the operations the server carried out
# are checked against tests/fidelity/typescript.txt (see lib.sh).
# The packages pinned in typescript/package-lock.json are installed with
# `npm ci` into target/sdk-node (about 60 MB, a few seconds) when the lock
# changes, and the session is compiled there with tsc when it changes. After
# changing a pin in typescript/package.json, regenerate the lock there with
# `npm install --package-lock-only --omit-lockfile-registry-resolved`.
# Needs Node 20 or later and npm. CI runs this.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

node_dir="${AGENTRY_SDK_NODE:-$sdk_root/target/sdk-node}"
src="$sdk_here/typescript"
mkdir -p "$node_dir"
# The stamp is written inside node_modules, which `npm ci` empties first: an
# install that failed half-way is done again.
if ! cmp -s "$src/package.json" "$node_dir/package.json" || ! cmp -s "$src/package-lock.json" "$node_dir/package-lock.json" ||
  [ ! -f "$node_dir/node_modules/.agentry-installed" ]; then
  rm -rf "$node_dir/out"
  cp "$src/package.json" "$src/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund)
  touch "$node_dir/node_modules/.agentry-installed"
fi
# Compiled beside node_modules, where tsc and node find the packages; out/
# keeps a copy of the source it was compiled from.
if ! cmp -s "$src/session.ts" "$node_dir/out/session.ts"; then
  cp "$src/session.ts" "$node_dir/session.ts"
  (cd "$node_dir" && ./node_modules/.bin/tsc --target es2022 --module nodenext --moduleResolution nodenext \
    --strict --skipLibCheck --noEmitOnError --outDir out session.ts)
  cp "$src/session.ts" "$node_dir/out/session.ts"
fi

seed="$sdk_root/examples/seed.json"
tenant="$(node -e 'console.log(Object.keys(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).tenants)[0])' "$seed")"

sdk_start typescript --seed "$seed"
node "$node_dir/out/session.js" "$origin" "$(sdk_token --tenant "$tenant")"
sdk_covered typescript
sdk_stop
