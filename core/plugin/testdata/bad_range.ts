// An apiVersion that is not a semver range.
export default { name: "acme-sloppy", apiVersion: "version one" };
