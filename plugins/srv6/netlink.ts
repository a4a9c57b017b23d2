/**
 * The one rtnetlink layer of the srv6 dataplane: a `netlink` package socket
 * opened inside the node's (or a pod's) network namespace, batched writes,
 * dumps that retry when the kernel marks them interrupted, and errors that
 * name the object that failed and the namespace.
 *
 * Writes are batched: many requests go out in one datagram without
 * NLM_F_ACK (the kernel then answers only failures) and the last one asks
 * for an ACK, which arrives after every earlier reply because the kernel
 * processes a datagram in order. Every write request is counted in
 * `writes`, which is how a reconcile proves it changed nothing.
 *
 * @example
 * const nl = NetlinkClient.open("/run/netns/node-1");
 * await nl.write([{ build: routeAdd(...), what: "add route 10.40.3.0/24 table 1001" }]);
 * const routes = await nl.dump(RTM.GETROUTE, rtmsg({...}), "routes");
 * nl.close();
 */
import netlink from "netlink";
import { getSystemErrorName } from "node:util";
import { inNetns } from "./netns.ts";
import { MessageBuilder, NLM_F, NLMSG } from "./wire.ts";

const { RawNetlinkSocket, parseMessages } = netlink;
/** The part of the package's RawNetlinkSocket this layer uses. */
export type RawSocket = Pick<InstanceType<typeof RawNetlinkSocket>, "on" | "send" | "ref" | "unref" | "close">;

/** A received netlink message: type, flags, sequence number and payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  data: Uint8Array;
}

/** Messages that open and close every datagram of a write (nfnetlink batches). */
export interface BatchEnvelope {
  begin: () => MessageBuilder;
  end: () => MessageBuilder;
}

/** One write: a message (built with the final sequence number) and a description of its object. */
export interface WriteRequest {
  /** Builds the message; the client supplies flags for batching. */
  message: MessageBuilder;
  /** What the request does, for errors: `add route 10.40.3.0/24 table 1001`. */
  what: string;
  /** Errno names that count as success (`ENOENT` for a delete of something already gone). */
  ignore?: string[];
}

const ERRNO_TEXT: Record<string, string> = {
  EEXIST: "File exists",
  ENOENT: "No such file or directory",
  EINVAL: "Invalid argument",
  ENODEV: "No such device",
  ESRCH: "No such process",
  EPERM: "Operation not permitted",
  EBUSY: "Device or resource busy",
  ENETUNREACH: "Network is unreachable",
  ENETDOWN: "Network is down",
  EADDRNOTAVAIL: "Cannot assign requested address",
  EOPNOTSUPP: "Operation not supported",
  EAFNOSUPPORT: "Address family not supported by protocol",
  ENOBUFS: "No buffer space available",
  ENOMEM: "Cannot allocate memory",
  ERANGE: "Numerical result out of range",
  EMSGSIZE: "Message too long",
};

/** A netlink request the kernel refused; names the object, the namespace and the errno. */
export class NetlinkError extends Error {
  constructor(readonly what: string, readonly netns: string, readonly errno: number, readonly code: string) {
    super(`Cannot ${what} in netns ${netns}: ${ERRNO_TEXT[code] ?? code} (${code})`);
    this.name = "NetlinkError";
  }
}

/** The errno of an NLMSG_ERROR or NLMSG_DONE payload (negative, 0 for success). */
function errnoOf(msg: NlMessage): number {
  return msg.data.length >= 4 ? new DataView(msg.data.buffer, msg.data.byteOffset, 4).getInt32(0, true) : 0;
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `errno ${errno}`;
  }
}

/**
 * Bytes per datagram (~150 route or nexthop messages). 96 KiB datagrams
 * drained the per-CPU pool that seg6 state is allocated from (ENOMEM) far
 * more often; 4 KiB never did but paid ~100 µs of acknowledgement round
 * trip per 40 messages. 16 KiB with a pause-and-retry on ENOMEM was fastest.
 */
const MAX_DATAGRAM = 16 * 1024;
const DUMP_RETRIES = 10;
const TRANSIENT_RETRIES = 20;
/** Sends of one datagram retried while the socket's buffer is full (about 0.3 s in all). */
const SEND_RETRIES = 20;

/** A send that failed only because the non-blocking socket's buffer was full. */
function wouldBlock(err: Error): boolean {
  const e = err as Error & { errno?: number; code?: string };
  return e.code === "EAGAIN" || e.code === "EWOULDBLOCK" || e.errno === -11 || e.errno === 11;
}
const debug = () => typeof process !== "undefined" && process.env.LACE_DEBUG_NETLINK === "1";

export class NetlinkClient {
  /** Write requests sent since the client was opened. */
  writes = 0;
  /** Requests sent again after a transient ENOMEM, and datagrams after a full send buffer (EAGAIN). */
  retried = 0;
  private seq = 1;
  private waiters = new Map<number, (m: NlMessage) => void>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly sock: RawSocket, readonly label: string) {
    sock.on("message", (buf: Buffer) => this.receive(buf));
    sock.on("error", () => {
      // A receive overflow (ENOBUFS) loses replies; waiting requests then time out with a named error.
    });
    sock.unref();
  }

  /**
   * Opens an rtnetlink socket in the namespace at `netnsPath` (undefined:
   * the current one). `label` names the namespace in errors.
   */
  static open(netnsPath?: string, label?: string, protocol = 0): NetlinkClient {
    const sock = inNetns(netnsPath, () => new RawNetlinkSocket(protocol, { recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 }));
    const name = label ?? (netnsPath ? netnsPath.split("/").pop()! : "host");
    return new NetlinkClient(sock, name);
  }

  /** Wraps a socket that is already open (tests pass a fake one that scripts the kernel's replies). */
  static fromSocket(sock: RawSocket, label: string): NetlinkClient {
    return new NetlinkClient(sock, label);
  }

  close(): void {
    this.sock.close();
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq % 0x7fffffff) + 1;
    return s;
  }

  private receive(buf: Buffer): void {
    let msgs;
    try {
      msgs = parseMessages(buf);
    } catch {
      return;
    }
    for (const m of msgs) {
      const w = this.waiters.get(m.seq);
      if (w) w({ type: m.type, flags: m.flags, seq: m.seq, data: m.data });
    }
  }

  /** Serialises operations on the socket: one batch or dump at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Sends one datagram. The socket does not block: when its send buffer is
   * full (EAGAIN, seen on a loaded machine) the datagram is sent again after
   * a short wait, up to SEND_RETRIES times, instead of failing the apply.
   */
  private send(parts: Uint8Array[]): Promise<void> {
    const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return new Promise((resolve, reject) => {
      const attempt = (n: number) => {
        this.sock.ref();
        this.sock.send(buf, {}, (err?: Error) => {
          if (!err) return resolve();
          if (wouldBlock(err) && n < SEND_RETRIES) {
            this.retried++;
            setTimeout(() => attempt(n + 1), Math.min(2 ** n, 20));
            return;
          }
          reject(err);
        });
      };
      attempt(0);
    });
  }

  /**
   * Sends the requests in as few datagrams as fit, and resolves when the
   * kernel has processed all of them. Rejects with the first failure (a
   * NetlinkError naming the object); the rest of the batch still ran.
   * `envelope` wraps every datagram (nfnetlink's batch begin and end
   * messages, which make it one nf_tables transaction); they are not
   * counted as writes.
   */
  write(requests: WriteRequest[], envelope?: BatchEnvelope): Promise<void> {
    if (requests.length === 0) return Promise.resolve();
    return this.exclusive(async () => {
      let pending = requests;
      for (let attempt = 0; ; attempt++) {
        const transient: WriteRequest[] = [];
        const errors = await this.writeOnce(pending, transient, envelope);
        if (transient.length === 0 || attempt >= TRANSIENT_RETRIES) {
          const first = errors[0] ?? (transient.length ? this.transientError(transient[0]) : undefined);
          if (first) throw first;
          return;
        }
        // seg6 tunnel state takes per-CPU memory with GFP_ATOMIC; the kernel refills that pool
        // from a work queue, so a burst can run it dry for a moment: wait, then redo just those.
        await new Promise((r) => setTimeout(r, 2 * (attempt + 1)));
        pending = transient;
        this.retried += transient.length;
      }
    });
  }

  private transientError(r: WriteRequest): NetlinkError {
    return new NetlinkError(r.what, this.label, 12, "ENOMEM");
  }

  /** One pass over the requests; ENOMEM failures go to `transient`, the rest are returned. */
  private async writeOnce(requests: WriteRequest[], transient: WriteRequest[], envelope?: BatchEnvelope): Promise<NetlinkError[]> {
    {
      try {
        const errors: NetlinkError[] = [];
        let i = 0;
        while (i < requests.length) {
          const parts: Uint8Array[] = [];
          const bySeq = new Map<number, WriteRequest>();
          let size = 0;
          let lastSeq = 0;
          while (i < requests.length && (parts.length === 0 || size < MAX_DATAGRAM)) {
            const r = requests[i++];
            const seq = this.nextSeq();
            const m = r.message;
            // Flags are patched in: the builder was created with the object's flags.
            const wire = m.finish(seq);
            // Decided with this message's own size: a large one that fills the datagram must carry the ACK the
            // batch is waited on (nf_tables element lists run to kilobytes).
            const last = i === requests.length || size + wire.length >= MAX_DATAGRAM - 512;
            const view = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
            view.setUint16(6, (view.getUint16(6, true) | NLM_F.REQUEST | (last ? NLM_F.ACK : 0)) & ~(last ? 0 : NLM_F.ACK), true);
            parts.push(wire);
            size += wire.length;
            bySeq.set(seq, r);
            lastSeq = seq;
            if (last) break;
          }
          this.writes += parts.length;
          if (envelope) {
            parts.unshift(envelope.begin().finish(this.nextSeq()).slice());
            parts.push(envelope.end().finish(this.nextSeq()).slice());
          }
          if (debug()) for (const r of bySeq.values()) console.error(`netlink ${this.label}: ${r.what}`);
          let cancel = () => {};
          const done = new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              for (const s of bySeq.keys()) this.waiters.delete(s);
              reject(new Error(`Netlink batch in netns ${this.label} got no acknowledgement within 10 s`));
            }, 10_000);
            cancel = () => {
              clearTimeout(timer);
              for (const s of bySeq.keys()) this.waiters.delete(s);
            };
            for (const [seq, req] of bySeq) {
              this.waiters.set(seq, (msg) => {
                if (msg.type !== NLMSG.ERROR) return;
                this.waiters.delete(seq);
                const errno = new DataView(msg.data.buffer, msg.data.byteOffset, 4).getInt32(0, true);
                if (errno !== 0) {
                  const code = errnoName(errno);
                  if (code === "ENOMEM") transient.push(req);
                  else if (!req.ignore?.includes(code)) errors.push(new NetlinkError(req.what, this.label, -errno, code));
                }
                if (seq === lastSeq) {
                  clearTimeout(timer);
                  for (const s of bySeq.keys()) this.waiters.delete(s);
                  resolve();
                }
              });
            }
          });
          const transientBefore = transient.length;
          try {
            await this.send(parts);
          } catch (e) {
            // Nothing was sent: no acknowledgement will come to wait for.
            cancel();
            throw e;
          }
          await done;
          // The per-CPU pool ran dry in this datagram: give the kernel's refill work a moment.
          if (transient.length > transientBefore) await new Promise((r) => setTimeout(r, 1));
        }
        return errors;
      } finally {
        this.sock.unref();
      }
    }
  }

  /** Hands each reply to `seq` to `onMessage` until it settles; rejects with `timeout` after 10 s. */
  private replies<T>(seq: number, timeout: string, onMessage: (msg: NlMessage, settle: (r: { value: T } | { error: Error }) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(seq);
        reject(new Error(timeout));
      }, 10_000);
      const settle = (r: { value: T } | { error: Error }) => {
        clearTimeout(timer);
        this.waiters.delete(seq);
        if ("error" in r) reject(r.error);
        else resolve(r.value);
      };
      this.waiters.set(seq, (msg) => onMessage(msg, settle));
    });
  }

  /**
   * Asks for one object (`RTM_GETLINK` with a name …) and returns the
   * kernel's one reply; rejects with a NetlinkError naming `what` (ENODEV:
   * no such object). A dump reads every object of the kind: on a node with
   * a hundred pods a dump of its links costs milliseconds, this a few µs.
   *
   * @example
   * const reply = await nl.get(RTM.GETLINK, ifinfomsg(0), "link eth0", (m) => m.str(IFLA.IFNAME, "eth0"));
   */
  get(type: number, header: Uint8Array, what: string, build?: (m: MessageBuilder) => void): Promise<NlMessage> {
    return this.exclusive(async () => {
      try {
        const seq = this.nextSeq();
        const m = new MessageBuilder(type, NLM_F.REQUEST).bytes(header);
        build?.(m);
        const reply = this.replies<NlMessage>(seq, `Cannot read ${what} in netns ${this.label}: no answer within 10 s`, (msg, settle) => {
          const errno = msg.type === NLMSG.ERROR ? errnoOf(msg) : 0;
          settle(errno !== 0 ? { error: new NetlinkError(`read ${what}`, this.label, -errno, errnoName(errno)) } : { value: msg });
        });
        // Both at once: the reply can arrive before the send's callback, and a rejection nobody awaits yet is fatal.
        const [, msg] = await Promise.all([this.send([m.finish(seq).slice()]), reply]);
        return msg;
      } finally {
        this.sock.unref();
      }
    });
  }

  /**
   * Dumps objects (`RTM_GETROUTE` …) and returns every reply message.
   * Retries when the kernel flags the dump as interrupted (NLM_F_DUMP_INTR:
   * the table changed while it was being read).
   */
  dump(type: number, header: Uint8Array, what: string, build?: (m: MessageBuilder) => void): Promise<NlMessage[]> {
    return this.exclusive(async () => {
      try {
        for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
          const seq = this.nextSeq();
          const m = new MessageBuilder(type, NLM_F.REQUEST | NLM_F.DUMP).bytes(header);
          build?.(m);
          const out: NlMessage[] = [];
          let interrupted = false;
          const done = this.replies<void>(seq, `Cannot dump ${what} in netns ${this.label}: no answer within 10 s`, (msg, settle) => {
            if (msg.flags & NLM_F.DUMP_INTR) interrupted = true;
            if (msg.type !== NLMSG.DONE && msg.type !== NLMSG.ERROR) {
              out.push(msg);
              return;
            }
            const errno = errnoOf(msg);
            settle(errno !== 0 ? { error: new NetlinkError(`dump ${what}`, this.label, -errno, errnoName(errno)) } : { value: undefined });
          });
          // The kernel may answer (an error, say) before send resolves: handled here, thrown below.
          done.catch(() => {});
          await this.send([m.finish(seq).slice()]);
          await done;
          if (!interrupted) return out;
        }
        throw new Error(`Cannot dump ${what} in netns ${this.label}: interrupted ${DUMP_RETRIES} times in a row`);
      } finally {
        this.sock.unref();
      }
    });
  }
}
