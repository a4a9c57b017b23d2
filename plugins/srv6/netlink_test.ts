/** The netlink layer against a scripted fake kernel: dump retries, batching, errors. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { EventEmitter } from "node:events";
import { NetlinkClient, type RawSocket } from "./netlink.ts";
import { MessageBuilder, NLM_F, NLMSG, RTM } from "./wire.ts";

const t = suite("srv6 netlink layer");

function message(type: number, flags: number, seq: number, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(16 + payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  Buffer.from(payload).copy(b, 16);
  return b;
}

function errorReply(seq: number, errno: number): Buffer {
  const p = Buffer.alloc(20);
  p.writeInt32LE(errno, 0);
  return message(NLMSG.ERROR, 0, seq, p);
}

/** A fake socket: `reply` turns each request datagram into the kernel's answers. */
class FakeSocket extends EventEmitter {
  sent: Buffer[] = [];
  constructor(private reply: (requests: { type: number; flags: number; seq: number }[]) => Buffer[]) {
    super();
  }
  send(msg: Uint8Array | Uint8Array[], _opts: unknown, cb?: (err?: Error) => void): void {
    const buf = Buffer.from(msg as Uint8Array);
    this.sent.push(buf);
    const reqs: { type: number; flags: number; seq: number }[] = [];
    for (let off = 0; off < buf.length;) {
      const len = buf.readUInt32LE(off);
      reqs.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8) });
      off += (len + 3) & ~3;
    }
    cb?.();
    setImmediate(() => this.emit("message", Buffer.concat(this.reply(reqs))));
  }
  ref(): void {}
  unref(): void {}
  close(): void {}
}

t("a datagram refused for a full send buffer (EAGAIN) is sent again; another send error fails the write", async () => {
  let refusals = 2;
  const sock = new FakeSocket(([req]) => [errorReply(req.seq, 0)]);
  const send = sock.send.bind(sock);
  sock.send = (msg, opts, cb) => {
    if (refusals-- > 0) return cb?.(Object.assign(new Error("send EAGAIN"), { errno: -11, code: "EAGAIN" }));
    send(msg, opts, cb);
  };
  const nl = NetlinkClient.fromSocket(sock as unknown as RawSocket, "fake");
  await nl.write([{ message: new MessageBuilder(RTM.NEWROUTE, 0).bytes(new Uint8Array(12)), what: "add a route" }]);
  assert.is(sock.sent.length, 1, "delivered once, after two refusals");
  assert.is(nl.retried, 2);
  sock.send = (_msg, _opts, cb) => cb?.(Object.assign(new Error("send EPERM"), { errno: -1, code: "EPERM" }));
  try {
    await nl.write([{ message: new MessageBuilder(RTM.NEWROUTE, 0).bytes(new Uint8Array(12)), what: "add a route" }]);
    assert.unreachable("a send error other than EAGAIN fails the write");
  } catch (e) {
    assert.match((e as Error).message, /EPERM/);
  }
});

t("a dump the kernel flags as interrupted is read again", async () => {
  let attempts = 0;
  const sock = new FakeSocket(([req]) => {
    attempts++;
    const intr = attempts === 1 ? NLM_F.DUMP_INTR : 0;
    return [
      message(RTM.NEWROUTE, NLM_F.MULTI | intr, req.seq, new Uint8Array(12).fill(attempts)),
      message(NLMSG.DONE, NLM_F.MULTI | intr, req.seq, new Uint8Array(4)),
    ];
  });
  const nl = NetlinkClient.fromSocket(sock as unknown as RawSocket, "fake");
  const msgs = await nl.dump(RTM.GETROUTE, new Uint8Array(12), "routes");
  assert.is(attempts, 2);
  assert.is(msgs.length, 1);
  assert.is(msgs[0].data[0], 2, "the result is the second, consistent dump");
});

t("get asks for one object (no dump flag) and returns the kernel's reply; an error names the object", async () => {
  const seen: { type: number; flags: number }[] = [];
  const sock = new FakeSocket(([req]) => {
    seen.push(req);
    return [seen.length === 1 ? message(RTM.NEWLINK, 0, req.seq, new Uint8Array(16).fill(7)) : errorReply(req.seq, -19)];
  });
  const nl = NetlinkClient.fromSocket(sock as unknown as RawSocket, "fake");
  const reply = await nl.get(RTM.GETLINK, new Uint8Array(16), "link eth0");
  assert.is(reply.type, RTM.NEWLINK);
  assert.is(reply.data[0], 7);
  assert.is(seen[0].type, RTM.GETLINK);
  assert.is(seen[0].flags & NLM_F.DUMP, 0, "not a dump");
  try {
    await nl.get(RTM.GETLINK, new Uint8Array(16), "link gone0");
    assert.unreachable("ENODEV must reject");
  } catch (e) {
    assert.is((e as { code?: string }).code, "ENODEV");
    assert.match((e as Error).message, /link gone0/);
  }
});

t("writes go out in one datagram, only the last asks for an ACK, failures name their object", async () => {
  const sock = new FakeSocket((reqs) => {
    const out: Buffer[] = [];
    for (const r of reqs) {
      if (r.seq === reqs[1].seq) out.push(errorReply(r.seq, -17));
      if (r.flags & NLM_F.ACK) out.push(errorReply(r.seq, 0));
    }
    return out;
  });
  const nl = NetlinkClient.fromSocket(sock as unknown as RawSocket, "fake");
  const req = (what: string) => ({ message: new MessageBuilder(RTM.NEWROUTE, NLM_F.CREATE).bytes(new Uint8Array(12)), what });
  try {
    await nl.write([req("add route a"), req("add route b"), req("add route c")]);
    assert.unreachable("the failure must surface");
  } catch (e) {
    assert.is((e as Error).message, "Cannot add route b in netns fake: File exists (EEXIST)");
  }
  assert.is(sock.sent.length, 1, "one datagram");
  assert.is(nl.writes, 3);
  const flags = [0, 1, 2].map((i) => sock.sent[0].readUInt16LE(i * 28 + 6));
  assert.equal(flags.map((f) => (f & NLM_F.ACK) !== 0), [false, false, true]);
});

t("a transient ENOMEM is retried for just the failed requests", async () => {
  let round = 0;
  const sock = new FakeSocket((reqs) => {
    round++;
    const out: Buffer[] = [];
    for (const r of reqs) {
      if (round === 1 && r.seq !== reqs[reqs.length - 1].seq) out.push(errorReply(r.seq, -12));
      if (r.flags & NLM_F.ACK) out.push(errorReply(r.seq, 0));
    }
    return out;
  });
  const nl = NetlinkClient.fromSocket(sock as unknown as RawSocket, "fake");
  const req = (what: string) => ({ message: new MessageBuilder(RTM.NEWNEXTHOP, NLM_F.CREATE).bytes(new Uint8Array(8)), what });
  await nl.write([req("a"), req("b"), req("c")]);
  assert.is(nl.retried, 2);
  assert.is(sock.sent.length, 2);
});

t.run();
