import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isStoreError } from "../../../core/mod.ts";
import { strategicMergePatch, supportsStrategicMerge } from "./strategic_merge.ts";

const t = suite("strategic merge patch");

const pod = () => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "default", finalizers: ["a/x", "a/y"] },
  spec: {
    containers: [
      { name: "a", image: "a:1", ports: [{ containerPort: 80 }, { containerPort: 443 }], env: [{ name: "X", value: "1" }] },
      { name: "b", image: "b:1" },
    ],
    volumes: [{ name: "data", emptyDir: {} }],
    tolerations: [{ key: "k", operator: "Exists" }],
  },
});

t("kubectl apply changing one image keeps the other container and stores no directive", () => {
  const out = strategicMergePatch("Pod", pod(), {
    spec: { "$setElementOrder/containers": [{ name: "a" }, { name: "b" }], containers: [{ name: "b", image: "b:2" }] },
  }) as ReturnType<typeof pod>;
  assert.equal(out.spec.containers.map((c) => `${c.name}=${c.image}`), ["a=a:1", "b=b:2"]);
  assert.not.ok(JSON.stringify(out).includes("$"), "no directive is left in the object");
});

t("nested lists merge by their own keys: ports by containerPort, env by name", () => {
  const out = strategicMergePatch("Pod", pod(), {
    spec: { containers: [{ name: "a", ports: [{ containerPort: 443, name: "tls" }, { containerPort: 8080 }], env: [{ name: "Y", value: "2" }] }] },
  }) as { spec: { containers: { ports: unknown[]; env: unknown[] }[] } };
  assert.equal(out.spec.containers[0].ports, [{ containerPort: 80 }, { containerPort: 443, name: "tls" }, { containerPort: 8080 }]);
  assert.equal(out.spec.containers[0].env, [{ name: "X", value: "1" }, { name: "Y", value: "2" }]);
});

t("$patch: delete removes one item, $patch: replace replaces a list or a map, lists without a strategy are replaced", () => {
  const del = strategicMergePatch("Pod", pod(), { spec: { containers: [{ name: "a", $patch: "delete" }] } }) as ReturnType<typeof pod>;
  assert.equal(del.spec.containers.map((c) => c.name), ["b"]);
  const rep = strategicMergePatch("Pod", pod(), { spec: { volumes: [{ $patch: "replace" }, { name: "new", emptyDir: {} }] } }) as ReturnType<typeof pod>;
  assert.equal(rep.spec.volumes, [{ name: "new", emptyDir: {} }]);
  const map = strategicMergePatch("Pod", pod(), { metadata: { $patch: "replace", name: "web" } }) as { metadata: unknown };
  assert.equal(map.metadata, { name: "web" });
  const tol = strategicMergePatch("Pod", pod(), { spec: { tolerations: [{ key: "z", operator: "Exists" }] } }) as ReturnType<typeof pod>;
  assert.equal(tol.spec.tolerations, [{ key: "z", operator: "Exists" }]);
});

t("$retainKeys drops the fields it does not list; null deletes a field", () => {
  const out = strategicMergePatch("Pod", pod(), {
    spec: { volumes: [{ name: "data", $retainKeys: ["name", "hostPath"], hostPath: { path: "/x" } }], tolerations: null },
  }) as { spec: Record<string, unknown> };
  assert.equal(out.spec.volumes, [{ name: "data", hostPath: { path: "/x" } }]);
  assert.not.ok("tolerations" in out.spec);
});

t("primitive sets: finalizers are merged, $deleteFromPrimitiveList removes, $setElementOrder orders", () => {
  const out = strategicMergePatch("Pod", pod(), {
    metadata: { finalizers: ["a/z"], "$deleteFromPrimitiveList/finalizers": ["a/x"], "$setElementOrder/finalizers": ["a/z", "a/y"] },
  }) as ReturnType<typeof pod>;
  assert.equal(out.metadata.finalizers, ["a/z", "a/y"]);
});

t("$setElementOrder reorders merged items and keeps server-only items in place", () => {
  const out = strategicMergePatch("Pod", pod(), {
    spec: { "$setElementOrder/containers": [{ name: "b" }, { name: "c" }], containers: [{ name: "c", image: "c:1" }] },
  }) as ReturnType<typeof pod>;
  assert.equal(out.spec.containers.map((c) => c.name), ["a", "b", "c"]);
});

t("Service ports merge by port", () => {
  const svc = { kind: "Service", spec: { ports: [{ port: 80, protocol: "TCP" }, { port: 443 }] } };
  const out = strategicMergePatch("Service", svc, { spec: { ports: [{ port: 443, name: "https" }] } }) as typeof svc;
  assert.equal(out.spec.ports, [{ port: 80, protocol: "TCP" }, { port: 443, name: "https" }]);
});

t("bad patches are refused with the path and the bad value; custom kinds are not supported", () => {
  const bad = [
    { spec: { containers: [{ image: "x" }] } },
    { spec: { $patch: "explode" } },
    { spec: { "$bogus": 1 } },
    { spec: { volumes: [{ name: "data", $retainKeys: "name" }] } },
  ];
  for (const patch of bad) {
    let err: unknown;
    try {
      strategicMergePatch("Pod", pod(), patch);
    } catch (e) {
      err = e;
    }
    assert.ok(isStoreError(err, "Invalid"), `refused: ${JSON.stringify(patch)}`);
  }
  let err: unknown;
  try {
    strategicMergePatch("Pod", pod(), { spec: { containers: [{ image: "x" }] } });
  } catch (e) {
    err = e;
  }
  assert.match((err as Error).message, /spec\.containers: every item needs its merge key "name", got \{"image":"x"\}/);
  assert.not.ok(supportsStrategicMerge("Network"));
  assert.ok(supportsStrategicMerge("Pod"));
});

t.run();
