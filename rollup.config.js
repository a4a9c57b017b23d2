// Bundles lace-cni for Node.js into dist/ (dist/lace-cni, the CNI executable, is compiled C: see the end):
//   dist/lace.js            the `lace` command line (agent/cli/main.ts), run by bin/lace.js
//   dist/lace-core.js       the core library (`lace-cni`: core/mod.ts)
//   dist/lace-plugin.js     what plugin authors import as `lace-cni/plugin` (core/plugin/mod.ts): the plugin
//                           API, resource types, IP types and field checks, and nothing of controller or IPAM
//   dist/plugins/<name>.js  the built-in plugins, where the loader looks for `lace-cni/<name>`
// One build with several entries, so the command line, the library and the
// built-in plugins share one copy of the core (one LaceError class, one
// registry). Shared chunks stay at the top of dist/ because the loader finds
// the built-ins relative to its own chunk (`./plugins/<name>.js`).
// Our own code is bundled; every package and `node:` builtin stays external.
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import esbuild from "rollup-plugin-esbuild";
import json from "@rollup/plugin-json";

const BUILTIN_PLUGINS = ["l3", "l2", "external", "srv6"];

// srv6-apply-worker: the srv6 plugin applies a node's state in a worker thread loaded from
// dist/srv6-apply-worker.js (plugins/srv6/pod_dataplane.ts). The command line (dist/lace.js) is not in
// `input`: see `cliEntry` below.
const input = { "lace-core": "core/mod.ts", "lace-plugin": "core/plugin/mod.ts", "srv6-apply-worker": "plugins/srv6/apply_worker.ts" };
for (const name of BUILTIN_PLUGINS) {
  const file = `plugins/${name}/mod.ts`;
  // A plugin still being written is left out rather than failing the whole build.
  if (existsSync(file)) input[`plugins/${name}`] = file;
  else console.warn(`rollup.config.js: ${file} does not exist yet; dist/ will not contain lace-cni/${name}`);
}

// dist/lace.js must contain agent/cli/main.ts itself, because `node dist/lace.js`
// starts the program only when main.ts's own import.meta.url is the script
// Node.js was given. With a strict signature, the code main.ts shares with its
// lazily imported subcommands (agent, sandbox) cannot be exported from the
// entry, so rollup moved main.ts into a shared chunk behind a re-exporting
// facade and `node dist/lace.js` silently did nothing. Letting this one entry
// export extra (internal) bindings keeps main.ts in dist/lace.js; the public
// library dist/lace-core.js stays strict.
const cliEntry = {
  name: "cli-entry",
  buildStart() {
    this.emitFile({ type: "chunk", id: "agent/cli/main.ts", fileName: "lace.js", preserveSignature: "allow-extension" });
  },
};

const laceBuild = {
  input,
  external: (id) => !id.startsWith(".") && !isAbsolute(id) && !id.startsWith("\0"),
  // Entry modules keep every export: dist/lace-core.js is a public API.
  preserveEntrySignatures: "strict",
  plugins: [cliEntry, json(), esbuild({ target: "node20", tsconfig: "tsconfig.json" })],
  output: {
    dir: "dist",
    format: "es",
    entryFileNames: "[name].js",
    chunkFileNames: "[name]-[hash].js",
    sourcemap: true,
  },
  onwarn(warning, warn) {
    // Circular imports between core modules are deliberate and harmless in ESM.
    if (warning.code === "CIRCULAR_DEPENDENCY") return;
    warn(warning);
  },
};

// The CNI plugin executable is not bundled here: it is C (agent/cni/shim/lace-cni.c,
// compiled by agent/cni/shim/build.sh), because a JavaScript runtime's start-up alone
// is above the latency budget of a CNI call.
export default laceBuild;
