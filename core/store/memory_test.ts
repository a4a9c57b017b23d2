import { storeConformance } from "./conformance.ts";
import { MemoryStore } from "./memory.ts";

storeConformance("MemoryStore", ({ watchHistory }) =>
  Promise.resolve({ store: new MemoryStore(watchHistory), close: () => Promise.resolve() })
);
