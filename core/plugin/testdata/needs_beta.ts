// Depends on test-beta; used to check that dependencies are listed first.
import { definePlugin } from "../../mod.ts";

export default definePlugin({ name: "acme-after-beta", apiVersion: "^1.0.0", dependencies: ["test-beta"] });
