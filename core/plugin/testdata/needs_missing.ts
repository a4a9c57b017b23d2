// Depends on a plugin nobody configures.
import { definePlugin } from "../../mod.ts";

export default definePlugin({ name: "acme-needy", apiVersion: "^1.0.0", dependencies: ["acme-ghost"] });
