/** The srv6 services suite on the kernel backend (seg6 lwtunnel; skipped where the kernel has none). */
import { servicesSuite } from "./services_suite.ts";

servicesSuite("kernel");
