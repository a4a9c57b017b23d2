import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isStoreError, type Resource } from "../../../core/mod.ts";
import { fieldsOf, fromFieldsV1, recordUpdate, serverSideApply, toFieldsV1 } from "./server_side_apply.ts";

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

t("an update owns what it changed: the applier then neither removes it nor changes it without a conflict", () => {
  const spec = { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } };
  const applied = serverSideApply(undefined, config({ a: "1" }, spec), { manager: "alice", force: false, now });
  const edited = structuredClone(applied);
  edited.metadata.labels = { a: "2", b: "1" };
  recordUpdate(applied, edited, "kubectl-edit", now);
  const owners = managed(edited).map((m) => `${m.manager}/${m.operation}:${JSON.stringify(fromFieldsV1(m.fieldsV1))}`);
  assert.equal(owners, [
    'alice/Apply:[["spec","type"],["spec","ipv4Subnet","prefix"]]',
    'kubectl-edit/Update:[["metadata","labels","a"],["metadata","labels","b"]]',
  ]);
  // Alice stops listing label a: it is kubectl-edit's now, so it stays.
  const reapplied = serverSideApply(edited, config({}, spec), { manager: "alice", force: false, now });
  assert.equal(reapplied.metadata.labels, { a: "2", b: "1" });
  let err: unknown;
  try {
    serverSideApply(edited, config({ b: "9" }, spec), { manager: "alice", force: false, now });
  } catch (e) {
    err = e;
  }
  assert.match(String(err), /conflict with "kubectl-edit": \.metadata\.labels\.b/);
});

t("a create records every field; an update that sends no managedFields keeps the stored ones", () => {
  const created = config({ a: "1" }, { type: "l2" });
  recordUpdate(undefined, created, "controller", now);
  assert.equal(managed(created).map((m) => [m.manager, m.operation]), [["controller", "Update"]]);
  const next = structuredClone(created);
  delete (next.metadata as { managedFields?: unknown }).managedFields;
  (next.spec as { anonymous?: boolean }).anonymous = true;
  recordUpdate(created, next, "other", now);
  assert.equal(managed(next).map((m) => m.manager), ["controller", "other"]);
  assert.equal(fromFieldsV1(managed(next)[1].fieldsV1), [["spec", "anonymous"]]);
});

t.run();
