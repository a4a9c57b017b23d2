/** The agent's metrics: counted, served on loopback only. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { AddressInfo } from "node:net";
import { AgentMetrics } from "./metrics.ts";

const t = suite("agent metrics");

t("counts CNI requests and applies, and serves them at /metrics on loopback", async () => {
  const m = new AgentMetrics("node-7");
  m.cni("ADD", "ok", 0.02);
  m.cni("ADD", "error_102", 0.01);
  m.applied("ok", 0.005, 12);
  const server = await m.serve("127.0.0.1:0");
  try {
    const port = (server.address() as AddressInfo).port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /lace_cni_requests_total\{command="ADD",outcome="ok",node="node-7"\} 1/);
    assert.match(text, /lace_cni_requests_total\{command="ADD",outcome="error_102",node="node-7"\} 1/);
    assert.match(text, /lace_cni_request_duration_seconds_count\{node="node-7",command="ADD"\} 2/);
    assert.match(text, /lace_dataplane_applies_total\{outcome="ok",node="node-7"\} 1/);
    assert.match(text, /lace_dataplane_writes_total\{node="node-7"\} 12/);
    assert.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  } finally {
    server.close();
  }
});

t("exports the datapath's counters as read at each scrape, and nothing where the datapath has none", async () => {
  const m = new AgentMetrics("node-7");
  let counters: Record<string, number> | undefined = { encap4: 5, drop_srh: 1 };
  m.datapathCounters(() => counters);
  m.backend("bpf");
  let text = await m.text();
  assert.match(text, /lace_datapath_packets_total\{event="encap4",node="node-7"\} 5/);
  assert.match(text, /lace_datapath_packets_total\{event="drop_srh",node="node-7"\} 1/);
  assert.match(text, /lace_dataplane_backend_info\{backend="bpf",node="node-7"\} 1/);
  counters = { encap4: 9, drop_srh: 1 };
  assert.match(await m.text(), /lace_datapath_packets_total\{event="encap4",node="node-7"\} 9/);
  counters = undefined;
  text = await m.text();
  assert.not.match(text, /lace_datapath_packets_total\{/);
});

t("refuses an address off loopback", async () => {
  const m = new AgentMetrics("node-7");
  try {
    await m.serve("0.0.0.0:9471");
    assert.unreachable("should refuse");
  } catch (e) {
    assert.is((e as Error).message, `Invalid metrics address "0.0.0.0:9471": expected 127.0.0.1:<port>, [::1]:<port> or unix:<path> (metrics stay on loopback)`);
  }
});

t.run();
