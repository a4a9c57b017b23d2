/** The srv6 dataplane suite on the kernel backend (seg6 lwtunnel): skipped, with the reason, where the kernel has no seg6. */
import { dataplaneSuite } from "./dataplane_suite.ts";

dataplaneSuite("kernel");
