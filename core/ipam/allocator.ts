/**
 * The address allocator contract shared by host-local (`l3`) and global
 * (`l2`) IPAM: one allocator per network (and per node for host-local).
 *
 * @example
 * const a = await allocator.allocate({ owner: pod.metadata.uid! });
 * a.addresses.map((x) => `${x.address}/${x.prefix.length} via ${x.gateway}`);
 */
import type { Family, IPAddress, Prefix } from "../ip/mod.ts";

/** A request for one address per family of the network. */
export interface AddressRequest {
  /** The owner handle: the pod UID, or annotation `lace-cni.io/owner` (a VM's name). */
  owner: string;
  /** Specific addresses wanted (annotation `lace-cni.io/ip`), at most one per family. */
  addresses?: IPAddress[];
}

/** One address handed out, with what the pod side needs to configure it. */
export interface AssignedAddress {
  address: IPAddress;
  /** The block (`l3`) or subnet (`l2`) it came from. */
  prefix: Prefix;
  /** The gateway of `prefix`: its first host address, unless the network's type puts it elsewhere. */
  gateway: IPAddress;
}

export interface Assignment {
  network: string;
  owner: string;
  /** One per family of the network, IPv4 first. */
  addresses: AssignedAddress[];
}

/** Addresses chosen, and the same once they are written. */
export interface EarlyAssignment {
  assignment: Assignment;
  /** Settles once the assignment is durable; rejects when it could not be written (the caller gives up its work). */
  durable: Promise<Assignment>;
}

export interface AddressAllocator {
  readonly network: string;
  /**
   * Hands out one address per family to `request.owner`, durably. The same
   * owner gets the same addresses again. Fails with ADDRESS_UNAVAILABLE for a
   * requested address that cannot be given, SUBNET_EXHAUSTED when nothing is left.
   */
  allocate(request: AddressRequest): Promise<Assignment>;
  /**
   * Like `allocate`, but answers as soon as the addresses are chosen from
   * what the allocator holds in memory, with the write still to come in
   * `durable`: a caller overlaps its other work with the write, and waits
   * for `durable` before it lets the addresses out. Optional: an allocator
   * without it is asked through `allocate`.
   *
   * @example
   * const { assignment, durable } = await allocator.allocateEarly!({ owner: pod.metadata.uid });
   * await Promise.all([durable, plugIn(assignment)]);
   */
  allocateEarly?(request: AddressRequest): Promise<EarlyAssignment>;
  /** Gives the owner's addresses back; false when it held none. */
  release(owner: string): Promise<boolean>;
  /** The owner's current addresses, read from the store. */
  lookup(owner: string): Promise<Assignment | undefined>;
}

/**
 * Thrown inside an operation when a node's blocks of a family are full.
 * Internal. One shared instance per family: a burst of requests that finds
 * the blocks full throws thousands of these, and capturing a stack trace
 * for each cost more than the allocations themselves.
 */
export class NeedBlock extends Error {
  private constructor(readonly family: Family) {
    super(`No free address in this node's IPv${family} blocks`);
    this.name = "NeedBlock";
  }
  static readonly v4 = new NeedBlock(4);
  static readonly v6 = new NeedBlock(6);
  static of(family: Family): NeedBlock {
    return family === 4 ? NeedBlock.v4 : NeedBlock.v6;
  }
}
