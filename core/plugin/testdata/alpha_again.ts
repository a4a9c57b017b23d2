// A second module claiming test-alpha's name.
import { definePlugin } from "../../mod.ts";

export default definePlugin({ name: "test-alpha", apiVersion: "^1.0.0" });
