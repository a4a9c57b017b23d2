/** The srv6 dataplane suite on the bpf backend (tc-eBPF on the underlay): runs on every kernel with BPF and clsact. */
import { dataplaneSuite } from "./dataplane_suite.ts";

dataplaneSuite("bpf");
