/**
 * Services in the sandbox: ClusterIPs for Services that have none (from the
 * sandbox's service CIDRs, as an API server's allocator would), which pods a
 * Service's selector picks, and the TCP ports its endpoints answer on (the
 * target ports, named ones resolved against the pod's container ports).
 * Pure: the sandbox runs responders and probes with them.
 *
 * @example
 * const [svc] = assignClusterIPs([service], new Set(), DEFAULT_SERVICE_CIDRS);
 * svc.spec.clusterIP; // "10.96.0.10"
 * tcpTargetPorts(svc, pod); // [8080]
 */
import { IPAddress, Prefix, type Resource } from "../../core/mod.ts";

/** Where the sandbox takes ClusterIPs from: IPv4, and IPv6 for dual-stack Services. */
export const DEFAULT_SERVICE_CIDRS = ["10.96.0.0/16", "fd00:96::/112"];
/** The first host offset handed out (the low ones are left, as clusters keep .1 for the API server). */
const FIRST = 10n;

interface ServicePort {
  port: number;
  protocol?: string;
  targetPort?: number | string;
  name?: string;
}

interface ServiceSpec {
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: string[];
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
  ports?: ServicePort[];
}

/** Whether `r` is a Kubernetes Service (not a lace-cni kind of the same name). */
export function isService(r: Resource): boolean {
  return r.kind === "Service" && !r.apiVersion.startsWith("lace-cni.io/");
}

/** A Service's ClusterIPs (none when headless or not assigned). */
export function clusterIPs(svc: Resource): string[] {
  const spec = svc.spec as ServiceSpec | undefined;
  return (spec?.clusterIPs ?? (spec?.clusterIP ? [spec.clusterIP] : [])).filter((ip) => ip && ip !== "None");
}

/**
 * The Services with a ClusterIP of each family they ask for (IPv4 unless
 * `ipFamilies` or a dual-stack `ipFamilyPolicy` says otherwise), taken from
 * `cidrs` past the addresses in `taken` (which it extends). Services that
 * have one, and headless ones, are returned as they are.
 */
export function assignClusterIPs(services: Resource[], taken: Set<string>, cidrs: string[]): Resource[] {
  const pools = cidrs.map((c) => Prefix.parse(c));
  return services.map((svc) => {
    const spec = (svc.spec ?? {}) as ServiceSpec;
    if (spec.clusterIP || spec.clusterIPs?.length) return svc;
    const families = spec.ipFamilies?.length
      ? spec.ipFamilies
      : spec.ipFamilyPolicy === "PreferDualStack" || spec.ipFamilyPolicy === "RequireDualStack" ? ["IPv4", "IPv6"] : ["IPv4"];
    const ips: string[] = [];
    for (const fam of families) {
      const pool = pools.find((p) => p.family === (fam === "IPv6" ? 6 : 4));
      if (!pool) throw new Error(`Service ${svc.metadata.namespace ?? "default"}/${svc.metadata.name} asks for an ${fam} ClusterIP: the sandbox has no service CIDR of that family (${cidrs.join(", ")})`);
      let ip: string | undefined;
      for (let i = FIRST; i < pool.size - 1n; i++) {
        const candidate = new IPAddress(pool.family, pool.network + i).toString();
        if (!taken.has(candidate)) {
          ip = candidate;
          break;
        }
      }
      if (!ip) throw new Error(`The sandbox's service CIDR ${pool} is full`);
      taken.add(ip);
      ips.push(ip);
    }
    return { ...svc, spec: { ...spec, clusterIP: ips[0], clusterIPs: ips, ipFamilies: families } };
  });
}

/** Whether the Service's selector picks the pod (same namespace, every label). */
export function selects(svc: Resource, pod: { namespace: string; labels?: Record<string, string> }): boolean {
  const selector = (svc.spec as ServiceSpec | undefined)?.selector;
  if (!selector || Object.keys(selector).length === 0) return false;
  return (svc.metadata.namespace ?? "default") === pod.namespace && Object.entries(selector).every(([k, v]) => pod.labels?.[k] === v);
}

/** The Service's TCP ports, with the port each of them reaches on `pod` (0: a named port the pod lacks). */
export function tcpTargetPorts(svc: Resource, pod: Resource | undefined): { port: number; target: number }[] {
  const ports = ((svc.spec as ServiceSpec | undefined)?.ports ?? []).filter((p) => (p.protocol ?? "TCP") === "TCP");
  const named = new Map<string, number>();
  const containers = (pod?.spec as { containers?: { ports?: { name?: string; containerPort?: number; protocol?: string }[] }[] } | undefined)?.containers ?? [];
  for (const c of containers) for (const p of c.ports ?? []) if (p.name && (p.protocol ?? "TCP") === "TCP" && p.containerPort) named.set(p.name, p.containerPort);
  return ports.map((p) => {
    const t = p.targetPort ?? p.port;
    return { port: p.port, target: typeof t === "number" ? t : /^\d+$/.test(t) ? Number(t) : named.get(t) ?? 0 };
  });
}
