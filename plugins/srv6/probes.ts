/**
 * Packet probes for the srv6 tests, run inside namespaces with python3
 * (raw sockets and TCP): a spoofed-source IPv4 echo request, an IPv6
 * packet aimed straight at a SID carrying an inner IPv4 echo request, and a
 * TCP connect. Test-only; the dataplane never runs these.
 *
 * @example
 * sendSpoofedEcho(podNs, "10.1.1.99", "10.1.2.20");
 * tcpConnect(podNs, "10.2.2.20", 7000); // true when the handshake completed
 */
import { inNs, inNsAsync, type TestCluster } from "./testing.ts";

const PY = "/usr/bin/python3";

const IPV4_ECHO = `
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def echo(src, dst):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1ace, 1) + b"lace-probe"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + icmp
`;

/** Sends one IPv4 echo request with an arbitrary source address (IP_HDRINCL). */
export function sendSpoofedEcho(ns: string, src: string, dst: string, count = 3): number {
  const code = `${IPV4_ECHO}
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(${count}): s.sendto(echo("${src}", "${dst}"), ("${dst}", 0))
`;
  return inNs(ns, [PY, "-c", code]).status;
}

/**
 * Sends IPv6 packets with next header 4 (IPv4-in-IPv6) straight to `sid`,
 * carrying an echo request `innerSrc` → `innerDst`: what a decapsulating
 * SID accepts from the underlay.
 */
export function sendToSid(ns: string, sid: string, innerSrc: string, innerDst: string, count = 3): number {
  const code = `${IPV4_ECHO}
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)
for i in range(${count}): s.sendto(echo("${innerSrc}", "${innerDst}"), ("${sid}", 0))
`;
  return inNs(ns, [PY, "-c", code]).status;
}

/** Starts a TCP listener that answers every connection with "ok". */
export function startTcpServer(cluster: TestCluster, ns: string, addr: string, port: number): void {
  serveTcp(cluster, ns, addr, port, 'b"ok"');
}

/** A TCP listener at addr:port answering each connection with the Python expression `reply` (`peer` is the client). */
function serveTcp(cluster: TestCluster, ns: string, addr: string, port: number, reply: string): void {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  const code = `
import socket
s = socket.socket(socket.${fam}, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${addr}", ${port})); s.listen(16)
while True:
    c, peer = s.accept(); c.sendall(${reply}); c.close()
`;
  cluster.start(ns, [PY, "-c", code]);
}

/**
 * Waits until a listener accepts connections at addr:port, connecting from
 * its own namespace (so the check does not depend on the dataplane).
 */
export async function waitListening(ns: string, addr: string, port: number): Promise<void> {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  const code = `
import socket, sys, time
for i in range(200):
    s = socket.socket(socket.${fam}, socket.SOCK_STREAM)
    try:
        s.connect(("${addr}", ${port})); sys.exit(0)
    except Exception:
        time.sleep(0.025)
    finally:
        s.close()
sys.exit(1)
`;
  const r = await inNsAsync(ns, [PY, "-c", code]);
  if (r.status !== 0) throw new Error(`No listener came up at ${addr}:${port} in netns ${ns}`);
}

/** Starts a TCP listener that answers every connection with the peer address it sees. */
export function startPeerServer(cluster: TestCluster, ns: string, addr: string, port: number): void {
  serveTcp(cluster, ns, addr, port, "peer[0].encode()");
}

/** The source address a peer server saw for a connection from `ns`, or undefined when it did not connect (1.5 s). */
export function tcpPeer(ns: string, addr: string, port: number): string | undefined {
  const r = inNs(ns, [PY, "-c", tcpPeerCode(addr, port)]);
  return r.status === 0 ? r.out : undefined;
}

/** tcpPeer without blocking. */
export async function tcpPeerAsync(ns: string, addr: string, port: number): Promise<string | undefined> {
  const r = await inNsAsync(ns, [PY, "-c", tcpPeerCode(addr, port)]);
  return r.status === 0 ? r.out : undefined;
}

function tcpPeerCode(addr: string, port: number): string {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  return `
import socket, sys
s = socket.socket(socket.${fam}, socket.SOCK_STREAM); s.settimeout(1.5)
try:
    s.connect(("${addr}", ${port})); sys.stdout.write(s.recv(100).decode())
except Exception:
    sys.exit(1)
`;
}

/** Whether a TCP connection to addr:port completes and the server's greeting arrives (within 1.5 s). */
export function tcpConnect(ns: string, addr: string, port: number): boolean {
  return inNs(ns, [PY, "-c", tcpConnectCode(addr, port)]).status === 0;
}

/** tcpConnect without blocking. */
export async function tcpConnectAsync(ns: string, addr: string, port: number): Promise<boolean> {
  return (await inNsAsync(ns, [PY, "-c", tcpConnectCode(addr, port)])).status === 0;
}

function tcpConnectCode(addr: string, port: number): string {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  return `
import socket, sys
s = socket.socket(socket.${fam}, socket.SOCK_STREAM); s.settimeout(1.5)
try:
    s.connect(("${addr}", ${port})); sys.exit(0 if s.recv(2) == b"ok" else 1)
except Exception:
    sys.exit(1)
`;
}

/** Starts TCP and UDP listeners at addr:port that answer every connection (datagram) with `name`: a Service endpoint. */
export function startNameServer(cluster: TestCluster, ns: string, addr: string, port: number, name: string): void {
  serveTcp(cluster, ns, addr, port, JSON.stringify(name).replace(/^/, "b"));
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  cluster.start(ns, [PY, "-c", `
import socket
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM)
s.bind(("${addr}", ${port}))
while True:
    d, peer = s.recvfrom(100); s.sendto(${JSON.stringify(name).replace(/^/, "b")}, peer)
`]);
}

/**
 * Opens `count` connections (TCP, or UDP exchanges from fresh sockets) to
 * addr:port from `ns`, one after the other, and returns what each got back
 * ("" for a connection that failed or got no answer within 1 s).
 */
export async function answers(ns: string, addr: string, port: number, count: number, proto: "tcp" | "udp" = "tcp"): Promise<string[]> {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  const code = `
import socket, sys
out = []
for i in range(${count}):
    s = socket.socket(socket.${fam}, socket.${proto === "tcp" ? "SOCK_STREAM" : "SOCK_DGRAM"}); s.settimeout(1)
    try:
        ${proto === "tcp" ? `s.connect(("${addr}", ${port})); out.append(s.recv(100).decode())` : `s.sendto(b"?", ("${addr}", ${port})); out.append(s.recv(100).decode())`}
    except Exception:
        out.append("")
    finally:
        s.close()
sys.stdout.write("\\n".join(out))
`;
  const r = await inNsAsync(ns, [PY, "-c", code], 5_000 + count * 1_100);
  return r.out.split("\n").slice(0, count);
}

/** A UDP client's answers, each with when it came (performance.now()). */
export interface UdpStream {
  answers: { at: number; from: string }[];
  /** Ends the client (its process group). */
  stop: () => void;
}

/**
 * A UDP client in `ns` that keeps one socket (one source port) and sends a
 * datagram to addr:port every 20 ms, recording each answer (a name server's
 * name): a client that keeps its conntrack entry alive. Stop it in a
 * `finally` (destroy() kills it too).
 */
export function udpStream(cluster: TestCluster, ns: string, addr: string, port: number): UdpStream {
  const fam = addr.includes(":") ? "AF_INET6" : "AF_INET";
  const p = cluster.start(ns, [PY, "-u", "-c", `
import socket, sys, time
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM); s.settimeout(0.05)
s.connect(("${addr}", ${port}))
while True:
    try:
        s.send(b"?"); sys.stdout.write(s.recv(100).decode() + "\\n")
    except Exception:
        sys.stdout.write("\\n")
    time.sleep(0.02)
`]);
  const out: UdpStream = { answers: [], stop: () => {} };
  let rest = "";
  p.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    const at = performance.now();
    for (const from of lines) out.answers.push({ at, from });
  });
  out.stop = () => {
    try {
      if (p.pid && p.exitCode === null) process.kill(-p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  return out;
}
