/** AddressBlock with the gateway where the network's type puts it. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAddress, Prefix } from "../ip/mod.ts";
import { AddressBlock } from "./address_block.ts";

const t = suite("ipam/address_block");

t("the gateway defaults to the first host and is never handed out", () => {
  const b = new AddressBlock(Prefix.parse("10.0.0.0/29"));
  assert.is(b.gateway.toString(), "10.0.0.1");
  const got: string[] = [];
  for (let o = b.nextFree(); o !== undefined; o = b.nextFree()) {
    got.push(b.address(o).toString());
    b.take(o, `pod-${got.length}`);
  }
  assert.equal(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
});

t("a gateway elsewhere (a type's gateway hook) is reserved instead, and the first host is handed out", () => {
  const b = new AddressBlock(Prefix.parse("10.0.0.0/29"), IPAddress.parse("10.0.0.6"));
  assert.is(b.reserved(6n), "is the gateway of 10.0.0.0/29");
  assert.is(b.reserved(1n), undefined);
  assert.is(b.capacity, 5n);
  const got: string[] = [];
  for (let o = b.nextFree(); o !== undefined; o = b.nextFree()) {
    got.push(b.address(o).toString());
    b.take(o, `pod-${got.length}`);
  }
  assert.equal(got, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
  // Freed addresses come back round robin, never the gateway.
  b.free(0n + 3n);
  assert.is(b.nextFree(), 3n);
});

t("a gateway outside the host addresses is refused with what was expected", () => {
  for (const g of ["10.0.0.0", "10.0.0.7", "10.0.1.1"]) {
    assert.throws(() => new AddressBlock(Prefix.parse("10.0.0.0/29"), IPAddress.parse(g)), /Invalid gateway .* for 10\.0\.0\.0\/29: expected a host address of the prefix/);
  }
  // IPv6 has no broadcast address: the last address may be the gateway.
  assert.is(new AddressBlock(Prefix.parse("fd00::/125"), IPAddress.parse("fd00::7")).reserved(7n), "is the gateway of fd00::/125");
});

t.run();
