// A network type with an addressing kind the API does not know.
export default {
  name: "acme-dhcp",
  apiVersion: "^1.0.0",
  networkTypes: [{
    type: "dhcp",
    addressing: "dhcp",
    forwarding: "bridged",
    validate() {},
    gateway: () => undefined,
    locate: () => undefined,
  }],
};
