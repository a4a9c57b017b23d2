/**
 * The srv6 dataplane plugin: applies a node's desired state to the Linux
 * kernel over rtnetlink (l3 networks, SRv6 between nodes, pods), carrying
 * SRv6 with the kernel's seg6 lwtunnel or with tc-eBPF programs on the
 * underlay (`dataplane: {feature: srv6, backend: auto | kernel | bpf}`). Runs on
 * Node.js only (the `netlink` native addon hangs under Deno); nothing in
 * core imports plugins/srv6.
 *
 * `create` returns a PodDataplane (pod_dataplane.ts): the agent applies
 * states and attaches, detaches and checks pods through it, and never
 * imports this plugin.
 *
 * @example
 * // lace.yaml
 * plugins: [lace-cni/srv6]
 * // the agent
 * const dp = await dataplanes.get("srv6").create(container, { node: "node-1" });
 * const report = await dp.apply(state); // report.writes === 0 when nothing changed
 */
import { definePlugin } from "../../core/plugin/mod.ts";
import { srv6Settings } from "./dataplane.ts";
import { Srv6PodDataplane } from "./pod_dataplane.ts";

export { BACKEND_CHOICES, chooseBackend, NetlinkError, Srv6Dataplane, srv6Settings, type BackendChoice, type Srv6Options, type Srv6Settings } from "./dataplane.ts";
export { Srv6PodDataplane } from "./pod_dataplane.ts";
export { ipv6Sid, networkMark, planNode, returnMark, type Plan, type UnderlayGateways } from "./plan.ts";
export { bridgeFor, localBridge, TABLE_BASE, tableFor } from "./naming.ts";

export default definePlugin({
  name: "srv6",
  apiVersion: "^1.0.0",
  dataplanes: [{
    feature: "srv6",
    description: "l3 networks over SRv6 with the Linux kernel (rtnetlink, nftables; seg6 lwtunnel or tc-eBPF); Node.js only",
    create: (_container, options) =>
      Srv6PodDataplane.open({ node: options.node, netns: options.netns, ...srv6Settings(options.settings), applyInWorker: options.background }),
  }],
});
