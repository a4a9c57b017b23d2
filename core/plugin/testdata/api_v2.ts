// Written for a plugin API this core does not provide.
import { definePlugin } from "../../mod.ts";

export default definePlugin({ name: "acme-future", apiVersion: "^2.0.0" });
