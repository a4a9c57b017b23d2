import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parse } from "yaml";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultTokenFile, ensureTls, ensureToken, kubeconfigFor, readToken, tlsFiles } from "./store.ts";

const t = suite("lace store kubeconfig");

t("a unix socket kubeconfig carries the socket in the lace-cni extension", () => {
  const kc = parse(kubeconfigFor("unix:/run/lace/api.sock"));
  const cluster = kc.clusters[0].cluster;
  assert.is(cluster.server, "http://localhost");
  assert.equal(cluster.extensions, [{ name: "lace-cni.io/unix-socket", extension: { path: "/run/lace/api.sock" } }]);
  assert.is(kc["current-context"], kc.contexts[0].name);
});

t("a loopback kubeconfig names the port; port 0 and other hosts are refused", () => {
  const kc = parse(kubeconfigFor("127.0.0.1:6443", { token: "t0ken-of-sixteen-chars", certificate: "PEM" }));
  assert.is(kc.clusters[0].cluster.server, "https://127.0.0.1:6443");
  assert.is(kc.clusters[0].cluster["certificate-authority-data"], Buffer.from("PEM").toString("base64"));
  assert.is(kc.users[0].user.token, "t0ken-of-sixteen-chars");
  assert.throws(() => kubeconfigFor("127.0.0.1:0"), /port 0 is only known once the server listens/);
  assert.throws(() => kubeconfigFor("192.168.1.1:6443"), /unix socket or loopback only/);
});

t("the token and the TLS identity are made once, owner-only, beside the database, and reused", () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-cli-store-"));
  try {
    const db = join(dir, "state", "store.db");
    const tokenFile = defaultTokenFile(db);
    assert.is(tokenFile, join(dir, "state", "store.token"));
    const token = ensureToken(tokenFile);
    assert.ok(token.length >= 40);
    assert.is(statSync(tokenFile).mode & 0o777, 0o600);
    assert.is(statSync(join(dir, "state")).mode & 0o777, 0o700);
    assert.is(ensureToken(tokenFile), token, "reused");
    assert.is(readToken(tokenFile), token);
    const files = tlsFiles(db);
    const tls = ensureTls(files);
    assert.match(tls.cert, /BEGIN CERTIFICATE/);
    assert.is(statSync(files.key).mode & 0o777, 0o600);
    assert.equal(ensureTls(files), tls, "reused");
    writeFileSync(tokenFile, "short\n");
    assert.throws(() => readToken(tokenFile), /Invalid bearer token in ".*store\.token": expected at least 16 characters/);
    assert.throws(() => readToken(join(dir, "absent")), /Cannot read the store's bearer token from ".*absent"/);
    writeFileSync(files.key, ensureTls(tlsFiles(join(dir, "other", "x.db"))).key);
    assert.throws(() => ensureTls(files), /Invalid TLS identity .*the private key does not belong to the certificate/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
