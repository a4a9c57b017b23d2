import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Resource } from "../../core/mod.ts";
import { assignClusterIPs, clusterIPs, DEFAULT_SERVICE_CIDRS, selects, tcpTargetPorts } from "./service_rows.ts";

const t = suite("sandbox/service_rows");

const svc = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "shop" }, spec });

t("Services without a ClusterIP get the next free ones of their families; others are left as they are", () => {
  const taken = new Set(["10.96.0.10"]);
  const out = assignClusterIPs([
    svc("a", { selector: { app: "a" } }),
    svc("b", { clusterIP: "10.96.9.9" }),
    svc("c", { ipFamilyPolicy: "PreferDualStack" }),
    svc("d", { clusterIP: "None" }),
  ], taken, DEFAULT_SERVICE_CIDRS);
  assert.equal(out.map(clusterIPs), [["10.96.0.11"], ["10.96.9.9"], ["10.96.0.12", "fd00:96::a"], []]);
  assert.equal((out[2].spec as { ipFamilies: string[] }).ipFamilies, ["IPv4", "IPv6"]);
  assert.ok(taken.has("10.96.0.12"), "what it hands out is taken");
  assert.throws(() => assignClusterIPs([svc("e", { ipFamilies: ["IPv6"] })], new Set(), ["10.96.0.0/16"]), /Service shop\/e asks for an IPv6 ClusterIP: the sandbox has no service CIDR of that family/);
});

t("selection and target ports: same namespace, every label; named ports through the pod's containers", () => {
  const s = svc("a", { selector: { app: "a" }, ports: [{ port: 80, targetPort: "http" }, { port: 53, protocol: "UDP" }, { port: 8443 }] });
  assert.ok(selects(s, { namespace: "shop", labels: { app: "a", x: "y" } }));
  assert.not.ok(selects(s, { namespace: "other", labels: { app: "a" } }));
  assert.not.ok(selects(svc("n", { ports: [] }), { namespace: "shop", labels: {} }), "no selector selects nothing");
  const pod: Resource = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "shop" }, spec: { containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 }] }] } };
  assert.equal(tcpTargetPorts(s, pod), [{ port: 80, target: 8080 }, { port: 8443, target: 8443 }]);
  assert.equal(tcpTargetPorts(s, undefined), [{ port: 80, target: 0 }, { port: 8443, target: 8443 }]);
});

t.run();
