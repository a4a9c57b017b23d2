/**
 * Frame-level probes for the l2 tests, run inside namespaces: a broadcast
 * frame of an experimental ethertype (0x88b5, IEEE 802 local experimental:
 * not IP, not ARP, so it can only cross whole), a frame counter with
 * tcpdump inside a pod, and the MAC a pod's neighbour table holds for an
 * address. Test-only; the dataplane never runs these.
 *
 * @example
 * const cap = captureIn(cluster, podNs, ["-i", "eth0", "ether", "proto", "0x88b5"]);
 * await cap.ready; sendBroadcast(otherPod, 3); await cap.stop(); // 3
 */
import { spawn, spawnSync } from "node:child_process";
import { inNs, type TestCluster } from "./testing.ts";

const PY = "/usr/bin/python3";

/** Sends `count` broadcast frames of ethertype 0x88b5 out of the pod's eth0 (AF_PACKET). */
export function sendBroadcast(ns: string, count = 1, ifname = "eth0"): number {
  const code = `
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("${ifname}", 0))
src = s.getsockname()[4]
for i in range(${count}): s.send(b"\\xff" * 6 + src + b"\\x88\\xb5" + b"lace-l2-broadcast-probe".ljust(46, b"."))
`;
  return inNs(ns, [PY, "-c", code]).status;
}

/**
 * Sends `count` gratuitous ARP requests (broadcast, sender = target = `ip`)
 * from `mac` out of the pod's eth0, as a VM announces an address or a move.
 */
export function sendGratuitousArp(ns: string, mac: string, ip: string, count = 1, ifname = "eth0"): number {
  return inNs(ns, [PY, "-c", gratuitousArpScript(mac, ip, count, ifname)]).status;
}

/** Sends one gratuitous ARP as sendGratuitousArp does; returns when it left (epoch ms, the sender's clock). */
export function gratuitousArpSentAt(ns: string, mac: string, ip: string, ifname = "eth0"): number {
  const r = inNs(ns, [PY, "-c", `${gratuitousArpScript(mac, ip, 1, ifname)}\nimport time\nprint(time.time())`]);
  const at = Number(r.out.trim().split("\n").pop()) * 1000;
  if (r.status !== 0 || !Number.isFinite(at)) throw new Error(`Cannot send a gratuitous ARP in ${ns}: ${r.out.trim()}`);
  return at;
}

function gratuitousArpScript(mac: string, ip: string, count: number, ifname: string): string {
  return `
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("${ifname}", 0))
mac = bytes.fromhex("${mac.replace(/:/g, "")}")
ip = socket.inet_aton("${ip}")
arp = b"\\x00\\x01\\x08\\x00\\x06\\x04\\x00\\x01" + mac + ip + b"\\x00" * 6 + ip
for i in range(${count}): s.send(b"\\xff" * 6 + mac + b"\\x08\\x06" + arp.ljust(46, b"\\x00"))
`;
}

/**
 * A guest with a MAC of its own behind a VM (a pod): a macvlan `gst` on the
 * pod's eth0, moved into namespace `guestNs` (created here) so its
 * addresses and routes are its own, IPv6 off so it announces nothing by
 * itself. Deleting the namespace removes it.
 *
 * @example
 * addGuest(podNs, "t1-pod-guest-g1", "02:aa:00:00:00:01", "10.61.0.99/24");
 * sendGratuitousArp("t1-pod-guest-g1", "02:aa:00:00:00:01", "10.61.0.99", 1, "gst");
 */
export function addGuest(podNs: string, guestNs: string, mac: string, cidr: string): void {
  const ip = (args: string[]) => {
    const r = spawnSync("ip", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ip ${args.join(" ")} failed: ${(r.stderr || r.error?.message || "").trim()}`);
  };
  ip(["netns", "add", guestNs]);
  ip(["-n", podNs, "link", "add", "gst", "link", "eth0", "address", mac, "type", "macvlan", "mode", "bridge"]);
  ip(["-n", podNs, "link", "set", "gst", "netns", guestNs]);
  ip(["netns", "exec", guestNs, "sysctl", "-qw", "net.ipv6.conf.gst.disable_ipv6=1"]);
  ip(["-n", guestNs, "addr", "add", cidr, "dev", "gst"]);
  ip(["-n", guestNs, "link", "set", "lo", "up"]);
  ip(["-n", guestNs, "link", "set", "gst", "up"]);
}

/** The MAC in a namespace's neighbour table for `ip` (any state with an address), or undefined. */
export function neighbourOf(ns: string, ip: string): string | undefined {
  const out = inNs(ns, ["ip", "neigh", "show", "to", ip]).out;
  return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1];
}

/**
 * Counts the frames tcpdump sees in a namespace from now until `stop()`
 * (which resolves to the count). `ready` resolves once tcpdump listens.
 */
export function captureIn(cluster: TestCluster | undefined, ns: string, args: string[]): { ready: Promise<void>; stop: () => Promise<number> } {
  const p = spawn("ip", ["netns", "exec", ns, "tcpdump", "-lnn", ...args], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  let err = "";
  p.stdout!.on("data", (d) => (out += d));
  const closed = new Promise((r) => p.once("close", r));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start in ${ns}: ${err.trim()}`)), 5000);
    p.stderr!.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  void cluster;
  return {
    ready,
    stop: async () => {
      await new Promise((r) => setTimeout(r, 200));
      try {
        process.kill(-p.pid!, "SIGTERM");
      } catch {
        // gone
      }
      await closed;
      // One line per frame starts with its time stamp (an unknown ethertype adds hex dump lines).
      return out.split("\n").filter((l) => /^\d\d:\d\d:\d\d/.test(l)).length;
    },
  };
}

/** tcpdump -v output as one string per packet (continuation lines joined). */
export function tcpdumpPackets(out: string): string[] {
  return out.split(/\n(?=\d\d:\d\d:\d\d)/).filter((p) => p.trim());
}
