import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parse } from "yaml";
import { kubeconfigFor } from "./store.ts";

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

t.run();
