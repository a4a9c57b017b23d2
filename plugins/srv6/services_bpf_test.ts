/** The srv6 services suite on the bpf backend (tc-eBPF on the underlay). */
import { servicesSuite } from "./services_suite.ts";

servicesSuite("bpf");
