/**
 * Where lace-cni is installed and which version it is: the checkout in the
 * sources (this file is `agent/package_root.ts`), the package root in the
 * bundle (rollup puts this module into a chunk at the top of `dist/`), so
 * `..` from here is the root in both.
 *
 * @example
 * join(PACKAGE_ROOT, "dist", "lace-cni"); // the CNI executable
 * PACKAGE_VERSION;                         // "0.1.0", what `lace --version` prints
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
// Inlined into the bundle by rollup's json plugin: the version travels with dist/, whatever sits beside it.
import pkg from "../package.json" with { type: "json" };

/** The checkout or installed package's root directory. */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));

/** The `version` of lace-cni's package.json. */
export const PACKAGE_VERSION: string = pkg.version;
