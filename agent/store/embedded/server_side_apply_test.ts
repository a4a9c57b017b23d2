import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isStoreError, type Resource } from "../../../core/mod.ts";
import { fieldsOf, fromFieldsV1, serverSideApply, toFieldsV1 } from "./server_side_apply.ts";

const t = suite("server-side apply");
const now = new Date("2026-12-06T12:00:00Z");

const config = (labels: Record<string, string>, spec: Record<string, unknown>): Resource => ({
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Network",
  metadata: { name: "backend", ...(Object.keys(labels).length ? { labels } : {}) },
  spec,
});

type Managed = { manager: string; operation: string; fieldsV1: Record<string, unknown> }[];
const managed = (o: Resource) => (o.metadata as { managedFields?: Managed }).managedFields ?? [];

t("fieldsV1 round trip; maps are walked, lists are leaves, identity metadata is not owned", () => {
  const fields = fieldsOf({ apiVersion: "v1", kind: "X", metadata: { name: "n", labels: { a: "1" } }, spec: { list: [1, 2], m: { k: true } } });
  assert.equal(fields, [["metadata", "labels", "a"], ["spec", "list"], ["spec", "m", "k"]]);
  assert.equal(toFieldsV1(fields), { "f:metadata": { "f:labels": { "f:a": {} } }, "f:spec": { "f:list": {}, "f:m": { "f:k": {} } } });
  assert.equal(fromFieldsV1(toFieldsV1(fields)), fields);
});

t("a field the manager no longer applies is removed; one another manager applies stays", () => {
  const spec = { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } };
  const first = serverSideApply(undefined, config({ a: "1", b: "2" }, { ...spec, anonymous: true }), { manager: "alice", force: false, now });
  assert.equal(managed(first).map((m) => [m.manager, m.operation]), [["alice", "Apply"]]);
  const shared = serverSideApply(first, config({ b: "2" }, spec), { manager: "bob", force: false, now });
  const second = serverSideApply(shared, config({ a: "1" }, spec), { manager: "alice", force: false, now });
  assert.equal(second.metadata.labels, { a: "1", b: "2" }, "b stays: bob applies it too");
  assert.is((second.spec as { anonymous?: boolean }).anonymous, undefined, "anonymous is gone: only alice applied it");
  assert.equal(managed(second).map((m) => m.manager).sort(), ["alice", "bob"]);
});

t("changing a field another applier owns is a conflict naming both; force takes it over", () => {
  const spec = { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } };
  const first = serverSideApply(undefined, config({}, spec), { manager: "alice", force: false, now });
  const changed = { type: "l2", ipv4Subnet: { prefix: "10.60.0.0/24" } };
  let err: unknown;
  try {
    serverSideApply(first, config({}, changed), { manager: "bob", force: false, now });
  } catch (e) {
    err = e;
  }
  assert.ok(isStoreError(err, "Conflict"), String(err));
  assert.match((err as Error).message, /Apply failed with 1 conflict: conflict with "alice": \.spec\.ipv4Subnet\.prefix/);
  const same = serverSideApply(first, config({}, spec), { manager: "bob", force: false, now });
  assert.equal(managed(same).map((m) => m.manager), ["alice", "bob"], "the same value is shared, not a conflict");
  const forced = serverSideApply(first, config({}, changed), { manager: "bob", force: true, now });
  assert.is((forced.spec as typeof changed).ipv4Subnet.prefix, "10.60.0.0/24");
  const alice = managed(forced).find((m) => m.manager === "alice")!;
  assert.equal(fromFieldsV1(alice.fieldsV1), [["spec", "type"]], "alice lost the field bob forced");
});

t.run();
