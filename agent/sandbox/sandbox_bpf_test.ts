/** The sandbox end-to-end suite with every agent on the bpf backend (tc-eBPF): runs on every kernel with BPF and clsact. */
import { sandboxSuite } from "./sandbox_suite.ts";

sandboxSuite("bpf");
