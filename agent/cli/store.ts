/**
 * `lace store serve`: runs the embedded durable API store (SQLite, served
 * with the Kubernetes REST conventions) until SIGTERM or SIGINT.
 * `lace store kubeconfig`: prints a kubeconfig for such a server, so the
 * controller, the agents and kubectl reach it.
 *
 * On TCP the server speaks HTTPS with a self-signed certificate and wants a
 * bearer token (kubectl sends tokens over TLS only): `serve` keeps both
 * beside the database, readable by their owner only (`store.token`,
 * `store.crt`, `store.key`, made on first use), and `kubeconfig` reads them.
 *
 * @example
 * lace store serve --db /var/lib/lace/store.db --listen unix:/run/lace/api.sock --kubeconfig /run/lace/kubeconfig
 * lace store serve --db .lace/store.db --listen 127.0.0.1:6443 &
 * lace store kubeconfig --db .lace/store.db --listen 127.0.0.1:6443 > lace.kubeconfig
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { parseListen, startEmbeddedServer } from "../store/embedded/server.ts";
import { checkKeyPair, selfSignedCertificate } from "../store/embedded/self_signed.ts";
import { SqliteStore } from "../store/embedded/sqlite_store.ts";
import { embeddedKubeConfig } from "../store/embedded/kubeconfig.ts";
import { networkTypesFrom } from "./validate.ts";

const DEFAULT_LISTEN = "unix:.lace/api.sock";
const DEFAULT_DB = ".lace/store.db";

/** Where the bearer token lives when `--token-file` is not given: beside the database. */
export function defaultTokenFile(db: string): string {
  return join(dirname(db), "store.token");
}

/** Reads the token in `path`; an empty or unreadable file is an error naming it. */
export function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new Error(`Cannot read the store's bearer token from "${path}": ${(e as Error).message} (start \`lace store serve\` on TCP once to create it, or pass --token-file)`);
  }
  if (!/^[A-Za-z0-9._~+/=-]{16,}$/.test(text)) {
    throw new Error(`Invalid bearer token in "${path}": expected at least 16 characters of letters, digits and -._~+/=`);
  }
  return text;
}

/** The token in `path`, made (random, 0600) when the file does not exist yet. */
export function ensureToken(path: string): string {
  if (existsSync(path)) {
    chmodSync(path, 0o600);
    return readToken(path);
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  writeFileSync(path, token + "\n", { mode: 0o600, flag: "wx" });
  return token;
}

/** The files of the TLS identity beside the database. */
export function tlsFiles(db: string): { cert: string; key: string } {
  return { cert: join(dirname(db), "store.crt"), key: join(dirname(db), "store.key") };
}

/** The server's certificate and key from `files`, made (self-signed, 0600) when missing. */
export function ensureTls(files: { cert: string; key: string }): { cert: string; key: string } {
  if (existsSync(files.cert) || existsSync(files.key)) {
    const pair = { cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8") };
    try {
      checkKeyPair(pair.cert, pair.key);
    } catch (e) {
      throw new Error(`Invalid TLS identity "${files.cert}" / "${files.key}": ${(e as Error).message}; remove both files to make a new one`);
    }
    chmodSync(files.key, 0o600);
    return pair;
  }
  const pair = selfSignedCertificate();
  mkdirSync(dirname(files.key), { recursive: true, mode: 0o700 });
  writeFileSync(files.key, pair.key, { mode: 0o600, flag: "wx" });
  writeFileSync(files.cert, pair.cert, { mode: 0o600, flag: "wx" });
  return pair;
}

/** The kubeconfig text for a server listening on `listen` (`unix:<path>` or `127.0.0.1:<port>`); TCP needs the token and certificate. */
export function kubeconfigFor(listen: string, tcp?: { token: string; certificate: string }): string {
  const a = parseListen(listen);
  if (a.kind === "unix") return embeddedKubeConfig({ url: "http://localhost", socketPath: a.path });
  if (a.port === 0) throw new Error(`Cannot write a kubeconfig for "${listen}": port 0 is only known once the server listens`);
  const host = a.host.includes(":") ? `[${a.host}]` : a.host;
  return embeddedKubeConfig({ url: `https://${host}:${a.port}`, ...tcp });
}

export interface StoreServeOptions {
  db: string;
  listen: string;
  kubeconfig?: string;
  watchHistory?: number;
  tokenFile?: string;
  /** A lace.yaml whose plugins' network types Networks are validated against; default the built-in ones. */
  config?: string;
  /** Share one commit among concurrent writes (default true); false commits each write alone. */
  groupCommit?: boolean;
}

/** Serves until a signal; resolves after a clean shutdown. */
export async function runStoreServe(opts: StoreServeOptions): Promise<void> {
  // Directories the store creates are its owner's only: the database holds every object.
  mkdirSync(dirname(opts.db), { recursive: true, mode: 0o700 });
  const address = parseListen(opts.listen);
  if (address.kind === "unix") mkdirSync(dirname(address.path), { recursive: true, mode: 0o700 });
  const token = address.kind === "tcp" ? ensureToken(opts.tokenFile ?? defaultTokenFile(opts.db)) : undefined;
  const tls = address.kind === "tcp" ? ensureTls(tlsFiles(opts.db)) : undefined;
  const networkTypes = await networkTypesFrom(opts.config);
  const store = SqliteStore.open(opts.db, { watchHistory: opts.watchHistory, groupCommit: opts.groupCommit });
  let server;
  try {
    server = await startEmbeddedServer({ store, listen: opts.listen, token, tls, networkTypes });
  } catch (e) {
    store.close();
    throw e;
  }
  if (opts.kubeconfig) {
    mkdirSync(dirname(opts.kubeconfig), { recursive: true, mode: 0o700 });
    writeFileSync(opts.kubeconfig, embeddedKubeConfig(server), { mode: 0o600 });
  }
  console.log(`lace store: serving ${opts.db} on ${server.listen} (resourceVersion ${store.resourceVersion})`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await server.close();
  store.close();
}

/** Registers `store serve` and `store kubeconfig` on the `lace` program. */
export function registerStore(program: Command): void {
  const store = program.command("store").description("The embedded durable API store used when there is no Kubernetes cluster");
  store
    .command("serve")
    .description("Serve a SQLite-backed store with the Kubernetes REST conventions on a unix socket or loopback")
    .requiredOption("--db <path>", "the SQLite database file (created if missing, mode 0600)")
    .option("--listen <address>", "unix:<path> or 127.0.0.1:<port>", DEFAULT_LISTEN)
    .option("--kubeconfig <path>", "also write a kubeconfig for this server to <path>")
    .option("--token-file <path>", "TCP only: the bearer token file (created if missing); default <db dir>/store.token")
    .option("--config <path>", "a lace.yaml whose plugins' network types Networks are validated against (default: l3, l2, external)")
    .option("--no-group-commit", "commit each write alone instead of sharing one commit among concurrent writes (for measurement)")
    .option("--watch-history <n>", "how many past events a watch may resume from", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`Invalid --watch-history "${v}": expected a positive integer`);
      return n;
    })
    .action((o: StoreServeOptions) => runStoreServe(o));
  store
    .command("kubeconfig")
    .description("Print a kubeconfig that reaches an embedded store at --listen")
    .option("--listen <address>", "unix:<path> or 127.0.0.1:<port>", DEFAULT_LISTEN)
    .option("--db <path>", "the store's database, to find its token file on TCP", DEFAULT_DB)
    .option("--token-file <path>", "TCP only: the bearer token file; default <db dir>/store.token")
    .action((o: { listen: string; db: string; tokenFile?: string }) => {
      const tcp = parseListen(o.listen).kind === "tcp";
      if (!tcp) return void process.stdout.write(kubeconfigFor(o.listen));
      const certFile = tlsFiles(o.db).cert;
      let certificate: string;
      try {
        certificate = readFileSync(certFile, "utf8");
      } catch (e) {
        throw new Error(`Cannot read the store's certificate "${certFile}": ${(e as Error).message} (start \`lace store serve\` on TCP once to create it, or pass --db)`);
      }
      process.stdout.write(kubeconfigFor(o.listen, { token: readToken(o.tokenFile ?? defaultTokenFile(o.db)), certificate }));
    });
}
