/** The sandbox end-to-end suite with every agent on the kernel backend (seg6): skipped, with the reason, where the kernel has no seg6. */
import { sandboxSuite } from "./sandbox_suite.ts";

sandboxSuite("kernel");
