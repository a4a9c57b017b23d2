/*
 * lace-cni: the CNI plugin executable the kubelet (or any CNI runtime) runs
 * once per ADD, DEL, CHECK, STATUS, GC and VERSION.
 *
 * Its start-up is part of every pod's start, so it does almost nothing: it
 * answers VERSION itself and forwards every other invocation, as is, to the
 * node agent's unix socket, then prints the agent's answer and exits with
 * the agent's status. The agent validates the invocation and shapes the
 * result for the configuration's cniVersion (agent/cni/invocation.ts), so
 * the CNI contract lives in one place, in TypeScript, with its tests.
 *
 * Wire format (agent/cni/server.ts is the other end):
 *   request  one line: {"env":{"CNI_COMMAND":"ADD",...},"stdin":"<config>"}\n
 *            (every CNI_* variable of the environment, stdin as a string)
 *   reply    "<exit status>\n" then the bytes to print on stdout, then EOF
 *
 * Which socket: the configuration's top-level "agentSocket" when it is an
 * absolute path, else $LACE_CNI_SOCKET, else /run/lace/cni.sock. When no
 * agent answers there the runtime gets error 11 "try again later" (50 for
 * STATUS, whose question is exactly "can you serve ADD?").
 *
 * Example:
 *   CNI_COMMAND=VERSION dist/lace-cni </dev/null
 *   {"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}
 *
 * Written in C rather than reusing a JavaScript runtime because a bare
 * Node.js start alone (20-25 ms) is above the whole latency budget of a
 * CNI call (the reference bridge plugin's ADD is ~12-19 ms); this starts in
 * well under a millisecond. Only libc is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/lace/cni.sock"
#define SUPPORTED_VERSIONS "[\"0.4.0\",\"1.0.0\",\"1.1.0\"]"
/* A network configuration is a few kB; GC's valid-attachments list may be long. */
#define MAX_INPUT (64u << 20)

/* CNI error codes this executable writes itself (agent/cni/spec.ts CNI_ERRORS). */
enum { CNI_IO_FAILURE = 5, CNI_TRY_AGAIN_LATER = 11, CNI_UNAVAILABLE = 50 };

extern char **environ;

/* ---- a growable byte buffer ------------------------------------------ */

struct buf {
  char *data;
  size_t len, cap;
};

static void die_oom(void) {
  static const char msg[] = "{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"lace-cni: out of memory\"}\n";
  (void)!write(1, msg, sizeof msg - 1);
  _exit(1);
}

static void buf_reserve(struct buf *b, size_t more) {
  if (b->len + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) die_oom();
  b->data = p;
  b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* Appends `s` (n bytes) as the inside of a JSON string. */
static void buf_json(struct buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      buf_add(b, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_add(b, e, 6);
    } else {
      buf_add(b, (const char *)&c, 1);
    }
  }
}

/* ---- stdin and stdout, which may be non-blocking pipes ---------------- */

static int wait_fd(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r;
}

/* All of stdin; none at all (closed descriptor) reads as empty. 0 on success, else errno. */
static int read_stdin(struct buf *in) {
  for (;;) {
    buf_reserve(in, 65536);
    ssize_t n = read(0, in->data + in->len, in->cap - in->len);
    if (n > 0) {
      in->len += (size_t)n;
      if (in->len > MAX_INPUT) return EFBIG;
    } else if (n == 0) {
      return 0;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_fd(0, POLLIN, -1);
    } else if (errno == EBADF) {
      return 0;
    } else if (errno != EINTR) {
      return errno;
    }
  }
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w > 0) {
      s += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_fd(fd, POLLOUT, -1);
    } else if (w < 0 && errno != EINTR) {
      return;
    }
  }
}

/* ---- the two top-level strings this executable reads from the config -- */

static size_t skip_ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  return i;
}

/* Index just past the JSON string starting at s[i] == '"', or 0 when it does not end. */
static size_t skip_string(const char *s, size_t i, size_t n) {
  for (i++; i < n; i++) {
    if (s[i] == '\\') i++;
    else if (s[i] == '"') return i + 1;
  }
  return 0;
}

/* Index just past the JSON value starting at s[i], or 0 when it is cut short. */
static size_t skip_value(const char *s, size_t i, size_t n) {
  if (i >= n) return 0;
  if (s[i] == '"') return skip_string(s, i, n);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < n) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i, n);
        if (!i) return 0;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      i++;
    }
    return 0;
  }
  while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') i++;
  return i;
}

/*
 * Copies the top-level string member `key` of the JSON object in s into out
 * (NUL-terminated). Returns 1 when found as a plain string (no escapes, fits),
 * else 0: anything unusual is left to the agent, which reads the whole
 * configuration properly and names what is wrong.
 */
static int top_level_string(const char *s, size_t n, const char *key, char *out, size_t outlen) {
  size_t klen = strlen(key);
  size_t i = skip_ws(s, 0, n);
  if (i >= n || s[i] != '{') return 0;
  i++;
  for (;;) {
    i = skip_ws(s, i, n);
    if (i >= n || s[i] != '"') return 0;
    size_t kstart = i + 1, kend = skip_string(s, i, n);
    if (!kend) return 0;
    i = skip_ws(s, kend, n);
    if (i >= n || s[i] != ':') return 0;
    i = skip_ws(s, i + 1, n);
    size_t vstart = i, vend = skip_value(s, i, n);
    if (!vend) return 0;
    if (kend - 1 - kstart == klen && memcmp(s + kstart, key, klen) == 0) {
      if (s[vstart] != '"') return 0;
      size_t len = vend - vstart - 2;
      if (len >= outlen || memchr(s + vstart + 1, '\\', len)) return 0;
      memcpy(out, s + vstart + 1, len);
      out[len] = 0;
      return 1;
    }
    i = skip_ws(s, vend, n);
    if (i >= n || s[i] != ',') return 0;
    i++;
  }
}

/* ---- answers written here ---------------------------------------------- */

static const char *config_version(const char *s, size_t n) {
  static char v[32];
  if (!top_level_string(s, n, "cniVersion", v, sizeof v) || !v[0]) return "1.1.0";
  return v;
}

/* Prints a CNI error result and exits with status 1. */
static void fail(const char *version, int code, const char *details, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct buf out = {0};
  buf_str(&out, "{\"cniVersion\":\"");
  buf_json(&out, version, strlen(version));
  char c[32];
  snprintf(c, sizeof c, "\",\"code\":%d,\"msg\":\"", code);
  buf_str(&out, c);
  buf_json(&out, msg, strlen(msg));
  if (details) {
    buf_str(&out, "\",\"details\":\"");
    buf_json(&out, details, strlen(details));
  }
  buf_str(&out, "\"}\n");
  write_all(1, out.data, out.len);
  exit(1);
}

static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EACCES: return "EACCES";
    case ENOTSOCK: return "ENOTSOCK";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
  }
}

/* The agent cannot be asked: tell the runtime to come back later (or, for STATUS, that ADD cannot be served). */
static void unreachable(const char *version, const char *command, const char *socket, int err) {
  if (err == EACCES) {
    fail(version, CNI_IO_FAILURE, "the socket is only open to root; run the CNI plugin as root",
         "Cannot open the agent socket %s: permission denied", socket);
  }
  if (err == ETIMEDOUT) {
    fail(version, CNI_TRY_AGAIN_LATER, "try again later", "The lace agent did not answer %s in time on %s", command, socket);
  }
  int code = strcmp(command, "STATUS") == 0 ? CNI_UNAVAILABLE : CNI_TRY_AGAIN_LATER;
  fail(version, code, "start the agent on this node (lace agent --node <name>) or wait for it to come up",
       "The lace agent is not reachable on %s (%s)", socket, errno_name(err));
}

/* How long the agent may take before the runtime is told to try again later (ms). */
static int timeout_ms(const char *command) {
  if (strcmp(command, "STATUS") == 0) return 10000;
  if (strcmp(command, "CHECK") == 0) return 30000;
  if (strcmp(command, "DEL") == 0) return 60000;
  return 120000;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(void) {
  const char *command = getenv("CNI_COMMAND");
  if (!command) command = "";
  struct buf in = {0};
  int err = read_stdin(&in);
  const char *version = config_version(in.data ? in.data : "", in.len);
  if (err) {
    fail(version, CNI_IO_FAILURE, strerror(err), "Cannot read the network configuration from stdin");
  }

  if (strcmp(command, "VERSION") == 0) {
    struct buf out = {0};
    buf_str(&out, "{\"cniVersion\":\"");
    buf_json(&out, version, strlen(version));
    buf_str(&out, "\",\"supportedVersions\":" SUPPORTED_VERSIONS "}\n");
    write_all(1, out.data, out.len);
    return 0;
  }

  static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  const char *from_env = getenv("LACE_CNI_SOCKET");
  if (top_level_string(in.data ? in.data : "", in.len, "agentSocket", socket_path, sizeof socket_path) && socket_path[0] == '/') {
    /* the configuration names it */
  } else if (from_env && from_env[0] == '/' && strlen(from_env) < sizeof socket_path) {
    strcpy(socket_path, from_env);
  } else {
    strcpy(socket_path, DEFAULT_SOCKET);
  }

  struct buf req = {0};
  buf_str(&req, "{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    buf_str(&req, first ? "\"" : ",\"");
    first = 0;
    buf_json(&req, *e, (size_t)(eq - *e));
    buf_str(&req, "\":\"");
    buf_json(&req, eq + 1, strlen(eq + 1));
    buf_str(&req, "\"");
  }
  buf_str(&req, "},\"stdin\":\"");
  buf_json(&req, in.data ? in.data : "", in.len);
  buf_str(&req, "\"}\n");

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) unreachable(version, command, socket_path, errno);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, socket_path);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) unreachable(version, command, socket_path, errno);
  for (size_t off = 0; off < req.len;) {
    ssize_t w = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) unreachable(version, command, socket_path, errno);
    off += (size_t)w;
  }

  struct buf reply = {0};
  long long deadline = now_ms() + timeout_ms(command);
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0 || wait_fd(fd, POLLIN, (int)left) == 0) unreachable(version, command, socket_path, ETIMEDOUT);
    buf_reserve(&reply, 65536);
    ssize_t n = read(fd, reply.data + reply.len, reply.cap - reply.len);
    if (n > 0) reply.len += (size_t)n;
    else if (n == 0) break;
    else if (errno != EINTR && errno != EAGAIN) unreachable(version, command, socket_path, errno);
  }

  /* "<status>\n<stdout>": anything else means the agent went away mid-answer. */
  char *nl = reply.len ? memchr(reply.data, '\n', reply.len) : NULL;
  char *end = NULL;
  long status = nl ? strtol(reply.data, &end, 10) : -1;
  if (!nl || end != nl || status < 0 || status > 255) {
    fail(version, CNI_TRY_AGAIN_LATER, "try again later",
         "The lace agent on %s closed the connection without a complete answer to %s", socket_path, command);
  }
  write_all(1, nl + 1, reply.len - (size_t)(nl + 1 - reply.data));
  return (int)status;
}
