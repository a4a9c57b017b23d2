/** Set-element keys for nf_tables (the bytes `nft` reads back are checked in dataplane_test.ts). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { concatKey, ifnameKey, podSourceKey } from "./nfsets.ts";

const t = suite("srv6 nftables set elements");

t("an ifname . address key is the name padded to 16 bytes, then the address in network order", () => {
  const k4 = podSourceKey("h-ra", "10.1.1.10");
  assert.is(k4.length, 20);
  assert.equal([...k4.subarray(0, 5)], [0x68, 0x2d, 0x72, 0x61, 0]);
  assert.equal([...k4.subarray(4, 16)], new Array(12).fill(0));
  assert.equal([...k4.subarray(16)], [10, 1, 1, 10]);
  const k6 = podSourceKey("h-ra", "fd00:1:0:1::10");
  assert.is(k6.length, 32);
  assert.equal([...k6.subarray(16, 18)], [0xfd, 0x00]);
  assert.is(k6[31], 0x10);
});

t("concatenated components start on 4-byte boundaries", () => {
  assert.equal([...concatKey([Uint8Array.of(1), Uint8Array.of(2, 3)])], [1, 0, 0, 0, 2, 3, 0, 0]);
});

t("an interface name of 16 bytes or more is refused, naming it", () => {
  assert.throws(() => ifnameKey("a-very-long-name"), /Invalid interface name "a-very-long-name": expected at most 15 bytes/);
});

t.run();
