/**
 * The kernel's BPF interface as the srv6 `bpf` backend uses it: libbpf
 * (Debian's libbpf1, loaded through koffi) opens and loads the compiled
 * object with its maps pinned in bpffs, attaches programs to a device's
 * clsact hook, and reads and writes map elements with the `bpf()` syscall
 * wrappers. Synchronous calls only: tc attachment opens a netlink socket,
 * so it runs inside `inNetns` for the node's namespace.
 *
 * @example
 * const obj = BpfObject.load("/…/dist/bpf/srv6.o", "/sys/fs/bpf/lace-cni/node-1");
 * inNetns(ns, () => obj.attach("lace_decap", ifindex, "ingress"));
 * const fd = obj.mapFd("lace_sids");
 * mapUpdate(fd, key, value);
 * obj.close(); // programs stay attached, maps stay pinned
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import koffi from "koffi";

type Ptr = unknown;

interface Lib {
  open(path: string, opts: null): Ptr;
  findMap(obj: Ptr, name: string): Ptr;
  setPinPath(map: Ptr, path: string): number;
  load(obj: Ptr): number;
  close(obj: Ptr): void;
  findProgram(obj: Ptr, name: string): Ptr;
  programFd(prog: Ptr): number;
  mapFd(map: Ptr): number;
  hookCreate(hook: TcHook): number;
  hookDestroy(hook: TcHook): number;
  tcAttach(hook: TcHook, opts: TcOpts): number;
  tcQuery(hook: TcHook, opts: TcOpts): number;
  update(fd: number, key: Uint8Array, value: Uint8Array, flags: number): number;
  lookup(fd: number, key: Uint8Array, value: Uint8Array): number;
  remove(fd: number, key: Uint8Array): number;
  nextKey(fd: number, key: Uint8Array | null, next: Uint8Array): number;
  updateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number[], opts: BatchOpts): number;
  deleteBatch(fd: number, keys: Uint8Array, count: number[], opts: BatchOpts): number;
  objGet(path: string): number;
  tcDetach(hook: TcHook, opts: TcOpts): number;
  progFdById(id: number): number;
  infoByFd(fd: number, info: Uint8Array, len: number[]): number;
  setPrint(fn: unknown): unknown;
  ringNew(fd: number, cb: unknown, ctx: null, opts: null): Ptr;
  ringConsume(rb: Ptr): number;
  ringFree(rb: Ptr): void;
  errno(): number;
  closeFd(fd: number): number;
}

interface TcHook { sz: number; ifindex: number; attach_point: number; parent: number }
interface TcOpts { sz: number; prog_fd: number; flags: number; prog_id: number; handle: number; priority: number }
interface BatchOpts { sz: number; elem_flags: bigint; flags: bigint }

let lib: Lib | undefined;
let sampleFn: ReturnType<typeof koffi.proto> | undefined;

/** The libbpf shared library (Debian package libbpf1), or a clear error naming it. */
function libbpf(): Lib {
  if (lib) return lib;
  let bpf: ReturnType<typeof koffi.load>;
  try {
    bpf = koffi.load("libbpf.so.1");
  } catch (e) {
    throw new Error(`Cannot load libbpf.so.1 for the bpf dataplane backend (install the libbpf1 package): ${(e as Error).message}`);
  }
  const libc = koffi.load("libc.so.6");
  koffi.opaque("bpf_object");
  koffi.opaque("bpf_map");
  koffi.opaque("bpf_program");
  // struct bpf_tc_hook / bpf_tc_opts / bpf_map_batch_opts (libbpf.h, bpf.h): sz first, trailing `size_t :0`.
  koffi.struct("bpf_tc_hook", { sz: "size_t", ifindex: "int", attach_point: "int", parent: "uint32", _pad: "uint32" });
  koffi.struct("bpf_tc_opts", { sz: "size_t", prog_fd: "int", flags: "uint32", prog_id: "uint32", handle: "uint32", priority: "uint32", _pad: "uint32" });
  koffi.struct("bpf_map_batch_opts", { sz: "size_t", elem_flags: "uint64", flags: "uint64" });
  const loc = libc.func("int *__errno_location()") as () => unknown;
  koffi.opaque("ring_buffer");
  sampleFn = koffi.proto("int ring_buffer_sample_fn(void *ctx, void *data, size_t size)");
  lib = {
    open: bpf.func("bpf_object *bpf_object__open_file(const char *path, void *opts)") as Lib["open"],
    findMap: bpf.func("bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)") as Lib["findMap"],
    setPinPath: bpf.func("int bpf_map__set_pin_path(bpf_map *map, const char *path)") as Lib["setPinPath"],
    load: bpf.func("int bpf_object__load(bpf_object *obj)") as Lib["load"],
    close: bpf.func("void bpf_object__close(bpf_object *obj)") as Lib["close"],
    findProgram: bpf.func("bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)") as Lib["findProgram"],
    programFd: bpf.func("int bpf_program__fd(bpf_program *prog)") as Lib["programFd"],
    mapFd: bpf.func("int bpf_map__fd(bpf_map *map)") as Lib["mapFd"],
    hookCreate: bpf.func("int bpf_tc_hook_create(bpf_tc_hook *hook)") as Lib["hookCreate"],
    hookDestroy: bpf.func("int bpf_tc_hook_destroy(bpf_tc_hook *hook)") as Lib["hookDestroy"],
    tcAttach: bpf.func("int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)") as Lib["tcAttach"],
    tcQuery: bpf.func("int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)") as Lib["tcQuery"],
    update: bpf.func("int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)") as Lib["update"],
    lookup: bpf.func("int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)") as Lib["lookup"],
    remove: bpf.func("int bpf_map_delete_elem(int fd, const void *key)") as Lib["remove"],
    nextKey: bpf.func("int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next)") as Lib["nextKey"],
    updateBatch: bpf.func("int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)") as Lib["updateBatch"],
    deleteBatch: bpf.func("int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)") as Lib["deleteBatch"],
    objGet: bpf.func("int bpf_obj_get(const char *path)") as Lib["objGet"],
    tcDetach: bpf.func("int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)") as Lib["tcDetach"],
    progFdById: bpf.func("int bpf_prog_get_fd_by_id(uint32_t id)") as Lib["progFdById"],
    infoByFd: bpf.func("int bpf_obj_get_info_by_fd(int fd, _Out_ void *info, _Inout_ uint32_t *len)") as Lib["infoByFd"],
    setPrint: bpf.func("void *libbpf_set_print(void *fn)") as Lib["setPrint"],
    ringNew: bpf.func("ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn *sample_cb, void *ctx, void *opts)") as Lib["ringNew"],
    ringConsume: bpf.func("int ring_buffer__consume(ring_buffer *rb)") as Lib["ringConsume"],
    ringFree: bpf.func("void ring_buffer__free(ring_buffer *rb)") as Lib["ringFree"],
    errno: () => koffi.decode(loc(), "int") as number,
    closeFd: libc.func("int close(int fd)") as Lib["closeFd"],
  };
  return lib;
}

const ERRNO: Record<number, string> = { 1: "EPERM", 2: "ENOENT", 7: "E2BIG", 12: "ENOMEM", 13: "EACCES", 17: "EEXIST", 22: "EINVAL", 28: "ENOSPC", 95: "EOPNOTSUPP", 524: "ENOTSUPP" };
const errName = (n: number) => ERRNO[Math.abs(n)] ?? `errno ${Math.abs(n)}`;

/** An error from the BPF interface, naming what was attempted. */
export class BpfError extends Error {
  constructor(readonly what: string, readonly errno: number) {
    super(`Cannot ${what}: ${errName(errno)}`);
    this.name = "BpfError";
  }
}

/** Where a tc program sits on a device. */
export type TcDirection = "ingress" | "egress";
const ATTACH_POINT = { ingress: 1, egress: 2 } as const;
const TC_F_REPLACE = 1;
/** Our tc filters: one handle and priority of their own per direction. */
const TC_HANDLE = 0x1ace;
const TC_PRIORITY = 1;

const BPF_FS_MAGIC = 0xcafe4a11;
/** Loads tried again after the verifier was interrupted (EAGAIN). */
const EAGAIN_RETRIES = 10;

/** Whether `dir` is the root of a mounted bpffs. */
export function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes sure `dir` is a bpffs mount, mounting one when it is not (as other
 * eBPF CNIs do for /sys/fs/bpf). Returns whether it mounted it.
 */
export function ensureBpffs(dir: string): boolean {
  if (isBpffs(dir)) return false;
  mkdirSync(dir, { recursive: true });
  const r = spawnSync("mount", ["-t", "bpf", "bpf", dir], { encoding: "utf8" });
  if (r.status !== 0 || !isBpffs(dir)) {
    throw new Error(`Cannot mount a bpffs at ${dir} for the pinned maps of the bpf dataplane: ${(r.stderr || r.error?.message || "mount failed").trim()}`);
  }
  return true;
}

/** A loaded object: its programs and (pinned) maps, by name. */
export class BpfObject {
  private constructor(private obj: Ptr | null, readonly pinDir: string) {}

  /**
   * Opens and loads `objectPath`, pinning every map named in `maps` under
   * `pinDir` (a directory inside a bpffs). Maps already pinned there are
   * reused, so their entries survive a restart; a pinned map whose layout
   * no longer matches is replaced (the next apply fills it).
   */
  static load(objectPath: string, pinDir: string, maps: readonly string[]): BpfObject {
    quiet(true);
    if (!existsSync(objectPath)) {
      throw new Error(`Cannot load the bpf datapath: ${objectPath} does not exist (build it with \`npm run build:bpf\`: clang, llvm and libbpf-dev)`);
    }
    mkdirSync(pinDir, { recursive: true });
    const l = libbpf();
    const attempt = (loud: boolean): { obj?: Ptr; err?: number } => {
      quiet(!loud);
      const obj = l.open(objectPath, null);
      if (!obj) return { err: l.errno() };
      for (const name of maps) {
        const m = l.findMap(obj, name);
        if (!m) {
          l.close(obj);
          throw new Error(`Cannot load the bpf datapath: ${objectPath} has no map "${name}"`);
        }
        const rc = l.setPinPath(m, `${pinDir}/${name}`);
        if (rc < 0) {
          l.close(obj);
          throw new BpfError(`set the pin path of map ${name} to ${pinDir}/${name}`, rc);
        }
      }
      const rc = l.load(obj);
      if (rc < 0) {
        l.close(obj);
        return { err: rc };
      }
      return { obj };
    };
    let r = attempt(false);
    // The verifier gives up with EAGAIN when a signal arrives while it works (a profiler's SIGPROF, say;
    // libbpf's own retries can all meet one): load again, keeping the pinned maps and their entries.
    for (let i = 0; i < EAGAIN_RETRIES && r.err === -11; i++) r = attempt(false);
    if (r.err !== undefined && r.err !== 0) {
      // A pinned map of an older layout cannot be reused: drop the pins and load once more (saying why if it fails).
      for (const name of readdirSync(pinDir)) rmSync(`${pinDir}/${name}`, { force: true });
      r = attempt(true);
    }
    quiet(true);
    if (!r.obj) throw new BpfError(`load the bpf datapath ${objectPath} (pinning maps in ${pinDir}; the verifier's log is on stderr)`, r.err ?? 0);
    return new BpfObject(r.obj, pinDir);
  }

  /** The file descriptor of a map (owned by the object: valid until close). */
  mapFd(name: string): number {
    return this.fd("map", name);
  }

  /** The file descriptor of a program (owned by the object). */
  programFd(name: string): number {
    return this.fd("program", name);
  }

  private fd(kind: "map" | "program", name: string): number {
    const l = libbpf();
    const found = kind === "map" ? l.findMap(this.live(), name) : l.findProgram(this.live(), name);
    const fd = found ? (kind === "map" ? l.mapFd(found) : l.programFd(found)) : -1;
    if (fd < 0) throw new Error(`Cannot use ${kind} "${name}" of the bpf datapath: it is not in the object`);
    return fd;
  }

  /**
   * Attaches program `program` to `ifindex` (clsact `direction`), replacing
   * ours if one is there: traffic never sees the device without a program.
   * Must run in the device's network namespace (inNetns).
   */
  attach(program: string, ifindex: number, direction: TcDirection): number {
    quiet(true);
    const l = libbpf();
    const progFd = this.programFd(program);
    const hook: TcHook = { sz: 24, ifindex, attach_point: ATTACH_POINT[direction], parent: 0 };
    const created = l.hookCreate(hook);
    if (created < 0 && created !== -17) throw new BpfError(`create the clsact hook on ifindex ${ifindex}`, created);
    const opts: TcOpts = { sz: 32, prog_fd: progFd, flags: TC_F_REPLACE, prog_id: 0, handle: TC_HANDLE, priority: TC_PRIORITY };
    const rc = l.tcAttach(hook, opts);
    if (rc < 0) throw new BpfError(`attach ${program} to ${direction} of ifindex ${ifindex}`, rc);
    return opts.prog_id;
  }

  /** Closes the object's descriptors; attached programs and pinned maps stay. */
  close(): void {
    if (this.obj) libbpf().close(this.obj);
    this.obj = null;
  }

  private live(): Ptr {
    if (!this.obj) throw new Error("The bpf datapath object is closed");
    return this.obj;
  }
}

let defaultPrint: unknown;
/** libbpf prints to stderr by default; keep that for failed loads only (attach re-creating a hook warns harmlessly). */
function quiet(on: boolean): void {
  const l = libbpf();
  if (on) {
    const prev = l.setPrint(null);
    defaultPrint ??= prev;
  } else if (defaultPrint) {
    l.setPrint(defaultPrint);
  }
}

/** The id of our program attached to `ifindex` in `direction`, or undefined. Run inside the namespace. */
export function attachedProgram(ifindex: number, direction: TcDirection): number | undefined {
  const l = libbpf();
  const hook: TcHook = { sz: 24, ifindex, attach_point: ATTACH_POINT[direction], parent: 0 };
  const opts: TcOpts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: TC_HANDLE, priority: TC_PRIORITY };
  return l.tcQuery(hook, opts) === 0 ? opts.prog_id : undefined;
}

/** Writes one element (BPF_ANY). */
export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, what: string): void {
  const rc = libbpf().update(fd, key, value, 0);
  if (rc < 0) throw new BpfError(what, rc);
}

/** Deletes one element; a missing one is success. */
export function mapDelete(fd: number, key: Uint8Array, what: string): void {
  const rc = libbpf().remove(fd, key);
  if (rc < 0 && rc !== -2) throw new BpfError(what, rc);
}

/** Reads one element into `value`; false when absent. */
export function mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean {
  return libbpf().lookup(fd, key, value) === 0;
}

/**
 * Every (key, value) of a map, read with get_next_key and lookup. Each
 * key and value is a fresh copy.
 */
export function mapEntries(fd: number, keySize: number, valueSize: number): [Uint8Array, Uint8Array][] {
  const l = libbpf();
  const out: [Uint8Array, Uint8Array][] = [];
  let prev: Uint8Array | null = null;
  for (;;) {
    const next = new Uint8Array(keySize);
    if (l.nextKey(fd, prev, next) !== 0) break;
    const value = new Uint8Array(valueSize);
    if (l.lookup(fd, next, value) === 0) out.push([next, value]);
    prev = next;
  }
  return out;
}

/**
 * Writes many elements in one `BPF_MAP_UPDATE_BATCH` call where the map
 * supports it, else one call each. `keys` and `values` are the packed
 * elements back to back.
 */
export function mapUpdateMany(fd: number, keys: Uint8Array, values: Uint8Array, count: number, what: string): void {
  if (count === 0) return;
  const l = libbpf();
  const n = [count];
  const rc = l.updateBatch(fd, keys, values, n, { sz: 24, elem_flags: 0n, flags: 0n });
  if (rc === 0 && n[0] === count) return;
  const done = rc === 0 ? n[0] : 0;
  if (rc < 0 && rc !== -95 && rc !== -524 && rc !== -22) throw new BpfError(what, rc);
  const ks = keys.length / count, vs = values.length / count;
  for (let i = done; i < count; i++) mapUpdate(fd, keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs), what);
}

/** Deletes many elements (batch where supported); missing ones are success. */
export function mapDeleteMany(fd: number, keys: Uint8Array, count: number, what: string): void {
  if (count === 0) return;
  const ks = keys.length / count;
  for (let i = 0; i < count; i++) mapDelete(fd, keys.subarray(i * ks, (i + 1) * ks), what);
}

/**
 * The tag of a program (a hash of its instructions, `bpf_prog_info.tag`):
 * the same object loaded twice has the same tag, so an agent that restarts
 * knows the attached program is already the one it would attach.
 */
export function programTag(fd: number): string {
  const info = new Uint8Array(256);
  const len = [info.length];
  const rc = libbpf().infoByFd(fd, info, len);
  if (rc < 0) throw new BpfError(`read the info of program fd ${fd}`, rc);
  return Buffer.from(info.subarray(8, 16)).toString("hex");
}

/** The tag of the program with id `id`, or undefined when it is gone. */
export function programTagById(id: number): string | undefined {
  const l = libbpf();
  const fd = l.progFdById(id);
  if (fd < 0) return undefined;
  try {
    return programTag(fd);
  } finally {
    l.closeFd(fd);
  }
}

/** Removes our filter from `ifindex` in `direction`; a missing one is success. Run inside the namespace. */
export function detachProgram(ifindex: number, direction: TcDirection): void {
  const l = libbpf();
  const hook: TcHook = { sz: 24, ifindex, attach_point: ATTACH_POINT[direction], parent: 0 };
  const opts: TcOpts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: TC_HANDLE, priority: TC_PRIORITY };
  const rc = l.tcDetach(hook, opts);
  if (rc < 0 && rc !== -2 && rc !== -19 && rc !== -22) throw new BpfError(`detach the program in ${direction} of ifindex ${ifindex}`, rc);
}

/** A map's type, key and value sizes and capacity as the kernel reports them (`bpf_map_info`). */
export function mapInfo(fd: number): { type: number; keySize: number; valueSize: number; maxEntries: number } {
  const info = new Uint8Array(128);
  const len = [info.length];
  const rc = libbpf().infoByFd(fd, info, len);
  if (rc < 0) throw new BpfError(`read the info of map fd ${fd}`, rc);
  const v = new DataView(info.buffer);
  return { type: v.getUint32(0, true), keySize: v.getUint32(8, true), valueSize: v.getUint32(12, true), maxEntries: v.getUint32(16, true) };
}

/**
 * A BPF ring buffer map read from user space (libbpf's ring_buffer): each
 * `consume()` hands every record written since the last one to `onRecord`
 * (a copy), synchronously, and returns how many there were.
 *
 * @example
 * const ring = RingBuffer.open(fd, (bytes) => events.push(decode(bytes)));
 * ring.consume(); // 2
 * ring.close();
 */
export class RingBuffer {
  private constructor(private rb: Ptr | null, private readonly cb: unknown) {}

  static open(fd: number, onRecord: (record: Uint8Array) => void): RingBuffer {
    const l = libbpf();
    const cb = koffi.register((_ctx: unknown, data: unknown, size: number | bigint) => {
      onRecord(new Uint8Array(koffi.view(data, Number(size))).slice());
      return 0;
    }, koffi.pointer(sampleFn!));
    const rb = l.ringNew(fd, cb, null, null);
    if (!rb) {
      koffi.unregister(cb);
      throw new BpfError(`open the ring buffer of map fd ${fd}`, -l.errno());
    }
    return new RingBuffer(rb, cb);
  }

  consume(): number {
    if (!this.rb) throw new Error("The ring buffer is closed");
    const n = libbpf().ringConsume(this.rb);
    if (n < 0) throw new BpfError("read the ring buffer", n);
    return n;
  }

  close(): void {
    if (!this.rb) return;
    libbpf().ringFree(this.rb);
    koffi.unregister(this.cb as Parameters<typeof koffi.unregister>[0]);
    this.rb = null;
  }
}
