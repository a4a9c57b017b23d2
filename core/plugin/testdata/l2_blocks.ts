// A network type that declares something the core cannot do: a bridged network cut into per-node blocks.
export default {
  name: "acme-l2blocks",
  apiVersion: "^1.0.0",
  networkTypes: [{
    type: "l2blocks",
    addressing: "host-local",
    forwarding: "bridged",
    validate() {},
    gateway: () => undefined,
    locate: () => undefined,
  }],
};
