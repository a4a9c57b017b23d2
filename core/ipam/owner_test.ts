import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import { addressRequestFor, IP_ANNOTATION, OWNER_ANNOTATION, podHasFinished } from "./mod.ts";

const t = suite("ipam/owner");

t("the owner handle is the pod UID unless annotation lace-cni.io/owner names one", () => {
  assert.equal(addressRequestFor({ metadata: { name: "p", namespace: "a", uid: "u-1" } }), { owner: "u-1" });
  assert.is(addressRequestFor({ metadata: { name: "virt-launcher-db", uid: "u-2", annotations: { [OWNER_ANNOTATION]: "vm/db-0" } } }).owner, "vm/db-0");
});

t("lace-cni.io/ip holds one address per family", () => {
  const r = addressRequestFor({ metadata: { name: "p", uid: "u", annotations: { [IP_ANNOTATION]: "10.0.0.5, fd00::5" } } });
  assert.equal(r.addresses!.map(String), ["10.0.0.5", "fd00::5"]);
});

t("bad annotations and missing handles are refused naming the pod and the value", () => {
  const cases: [Record<string, string>, string | undefined, RegExp][] = [
    [{ [IP_ANNOTATION]: "10.0.0.300" }, "u", /Pod a\/p: annotation lace-cni.io\/ip .*"10\.0\.0\.300"/],
    [{ [IP_ANNOTATION]: "10.0.0.1,10.0.0.2" }, "u", /two IPv4 addresses/],
    [{ [OWNER_ANNOTATION]: "" }, "u", /lace-cni.io\/owner is empty/],
    [{}, undefined, /neither a UID nor annotation/],
  ];
  for (const [annotations, uid, re] of cases) {
    try {
      addressRequestFor({ metadata: { name: "p", namespace: "a", uid, annotations } });
      assert.unreachable(`accepted ${JSON.stringify(annotations)}`);
    } catch (e) {
      assert.ok(isLaceError(e, "INVALID_ARGUMENT"), String(e));
      assert.match((e as Error).message, re);
    }
  }
});

t("a pod has finished in phase Succeeded or Failed only", () => {
  const phases: [string | undefined, boolean][] = [["Succeeded", true], ["Failed", true], ["Running", false], ["Pending", false], ["Unknown", false], [undefined, false]];
  for (const [phase, finished] of phases) assert.is(podHasFinished({ status: phase ? { phase } : undefined }), finished, String(phase));
});

t.run();
