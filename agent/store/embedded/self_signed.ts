/**
 * A self-signed TLS certificate for the embedded store's loopback listener.
 * kubectl sends a bearer token only over TLS, so TCP is HTTPS; the
 * kubeconfig carries this certificate as its `certificate-authority-data`,
 * so clients verify the server instead of skipping verification.
 *
 * Written here, on node:crypto, because Node has no certificate builder and
 * an X.509 library would be a large dependency for one fixed shape: an
 * ECDSA P-256 key, CA:TRUE (it is its own root), serverAuth, and subject
 * alternative names `localhost`, `127.0.0.1` and `::1`.
 *
 * @example
 * const { key, cert } = selfSignedCertificate();
 * https.createServer({ key, cert }, handler);
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import { isIPv6 } from "node:net";

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, length, content. */
function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...c: Buffer[]) => der(0x30, ...c);

function oid(text: string): Buffer {
  const parts = text.split(".").map(Number);
  const out = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return der(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z"; // YYYYMMDDHHMMSSZ
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2))) : der(0x18, Buffer.from(iso));
}

function ipBytes(ip: string): Buffer {
  if (!isIPv6(ip)) return Buffer.from(ip.split(".").map(Number));
  const [head, tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.from(groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  }));
}

function name(cn: string): Buffer {
  return seq(der(0x31, seq(oid("2.5.4.3"), der(0x0c, Buffer.from(cn)))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));
}

/** A certificate (PEM) and its private key (PEM), valid from an hour ago for `days` days. */
export function selfSignedCertificate(
  options: { commonName?: string; dnsNames?: string[]; ips?: string[]; days?: number } = {},
): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive
  serial[0] |= 0x01; // and no leading zero to strip
  const ecdsaSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const now = Date.now();
  const subject = name(options.commonName ?? "lace-cni embedded store");
  const san = seq(
    ...(options.dnsNames ?? ["localhost"]).map((d) => der(0x82, Buffer.from(d))),
    ...(options.ips ?? ["127.0.0.1", "::1"]).map((ip) => der(0x87, ipBytes(ip))),
  );
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    ecdsaSha256,
    subject,
    seq(time(new Date(now - 3600_000)), time(new Date(now + (options.days ?? 3650) * 86400_000))),
    subject,
    publicKey.export({ type: "spki", format: "der" }),
    der(
      0xa3,
      seq(
        extension("2.5.29.19", true, seq(der(0x01, Buffer.from([0xff])))), // basicConstraints CA:TRUE
        extension("2.5.29.15", true, der(0x03, Buffer.from([0x02, 0x84]))), // keyUsage digitalSignature, keyCertSign
        extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage serverAuth
        extension("2.5.29.17", false, san),
      ),
    ),
  );
  const signature = sign("sha256", tbs, privateKey);
  const cert = seq(tbs, ecdsaSha256, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const pem = `-----BEGIN CERTIFICATE-----\n${cert.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE-----\n`;
  return { cert: pem, key: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
}

/** Checks that `key` (PEM) is the private key of `cert` (PEM); throws with the reason otherwise. */
export function checkKeyPair(cert: string, key: string): void {
  const x = new X509Certificate(cert);
  if (!x.checkPrivateKey(createPrivateKey(key))) throw new Error("the private key does not belong to the certificate");
}
