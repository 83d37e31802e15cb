/* qcop_native.c owns every system call Node lacks: POSIX shm + mmap, futex waits and the
 * crash-safe lock loop, System V semaphores, SO_PEERCRED, process liveness and sd_notify.
 * Pure C over the N-API C interface (NAPI_VERSION 8); see docs/SHM.md for the design. */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAITERS 0x40000000
#define LOCK_PID_MASK 0x3fffffff
#define POLL_MS 10 /* liveness re-check period while waiting: bounds crash recovery time */

/* ---------- errors ---------- */

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case ESRCH: return "ESRCH";
    case EINTR: return "EINTR"; case EIO: return "EIO"; case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN"; case ENOMEM: return "ENOMEM"; case EACCES: return "EACCES";
    case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV"; case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL"; case ENFILE: return "ENFILE"; case EMFILE: return "EMFILE";
    case EFBIG: return "EFBIG"; case ENOSPC: return "ENOSPC"; case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG"; case ENOSYS: return "ENOSYS";
    case EIDRM: return "EIDRM"; case ENOTSOCK: return "ENOTSOCK"; case EMSGSIZE: return "EMSGSIZE";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED"; case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT"; case ELOOP: return "ELOOP"; case EOVERFLOW: return "EOVERFLOW";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(e));
  napi_value code, text, err;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_value sc, no;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_create_int32(env, -e, &no);
  napi_set_named_property(env, err, "syscall", sc);
  napi_set_named_property(env, err, "errno", no);
  napi_throw(env, err);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

/* ---------- argument helpers ---------- */

#define ARGS(n)                                                             \
  size_t argc = n;                                                          \
  napi_value argv[n];                                                       \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)      \
    return NULL;

static int arg_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) return 0;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int arg_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_boolean) napi_get_value_bool(env, v, &b);
  return b;
}

/* Copies a JS string into buf; returns 0 when it is not a string or too long. */
static int arg_str(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) return 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len + 1 > cap) return 0;
  napi_get_value_string_utf8(env, v, buf, cap, &len);
  return strlen(buf) == len; /* refuse embedded NUL */
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static napi_value boolean(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- mappings: registry so munmap waits for in-flight waits ---------- */

typedef struct mapping {
  char *addr;
  size_t len;
  int refs;            /* in-flight async waits using this mapping (main thread only) */
  int unmap_requested; /* munmap() was called while refs > 0 */
  volatile int cancel; /* tells waiting workers to give up */
  struct mapping *next;
} mapping_t;

static pthread_mutex_t map_mutex = PTHREAD_MUTEX_INITIALIZER;
static mapping_t *mappings;

static mapping_t *mapping_find(void *addr) {
  for (mapping_t *m = mappings; m; m = m->next)
    if (m->addr == addr) return m;
  return NULL;
}

static void mapping_drop(mapping_t *m) { /* caller holds map_mutex */
  munmap(m->addr, m->len);
  for (mapping_t **p = &mappings; *p; p = &(*p)->next)
    if (*p == m) { *p = m->next; break; }
  free(m);
}

/* Resolves (ab, byteOffset) to an aligned int32 inside a live mapping; takes a ref. */
static mapping_t *word_of(napi_env env, napi_value ab, napi_value off, int32_t **word) {
  void *data = NULL;
  size_t len = 0;
  int64_t o;
  bool is_ab = false;
  napi_is_arraybuffer(env, ab, &is_ab);
  if (!is_ab || napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok || !arg_i64(env, off, &o) ||
      o < 0 || (o & 3) || (size_t)o + 4 > len) {
    throw_type(env, "expected a mapped ArrayBuffer and an aligned byte offset inside it");
    return NULL;
  }
  pthread_mutex_lock(&map_mutex);
  mapping_t *m = mapping_find(data);
  if (m) m->refs++;
  pthread_mutex_unlock(&map_mutex);
  if (!m) { throw_type(env, "ArrayBuffer is not a live qcop mapping"); return NULL; }
  *word = (int32_t *)((char *)data + o);
  return m;
}

static void mapping_unref(mapping_t *m) {
  pthread_mutex_lock(&map_mutex);
  if (--m->refs == 0 && m->unmap_requested) mapping_drop(m);
  pthread_mutex_unlock(&map_mutex);
}

/* ---------- shm ---------- */

static napi_value js_shm_open(napi_env env, napi_callback_info info) {
  ARGS(3);
  char name[256];
  int64_t flags, mode;
  if (argc < 3 || !arg_str(env, argv[0], name, sizeof name) || !arg_i64(env, argv[1], &flags) ||
      !arg_i64(env, argv[2], &mode))
    return throw_type(env, "shmOpen(name, flags, mode)");
  int fd = shm_open(name, (int)flags | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return throw_errno(env, errno, "shm_open");
  return num(env, fd);
}

static napi_value js_shm_unlink(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[256];
  if (argc < 1 || !arg_str(env, argv[0], name, sizeof name)) return throw_type(env, "shmUnlink(name)");
  if (shm_unlink(name) < 0) return throw_errno(env, errno, "shm_unlink");
  return NULL;
}

static napi_value js_ftruncate(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t fd, size;
  if (argc < 2 || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &size) || size < 0)
    return throw_type(env, "ftruncate(fd, size)");
  if (ftruncate((int)fd, (off_t)size) < 0) return throw_errno(env, errno, "ftruncate");
  return NULL;
}

static napi_value js_fstat(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  struct stat st;
  if (argc < 1 || !arg_i64(env, argv[0], &fd)) return throw_type(env, "fstat(fd)");
  if (fstat((int)fd, &st) < 0) return throw_errno(env, errno, "fstat");
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "size", num(env, (double)st.st_size));
  napi_set_named_property(env, o, "uid", num(env, st.st_uid));
  napi_set_named_property(env, o, "gid", num(env, st.st_gid));
  napi_set_named_property(env, o, "mode", num(env, st.st_mode & 07777));
  napi_set_named_property(env, o, "mtimeMs", num(env, st.st_mtim.tv_sec * 1e3 + st.st_mtim.tv_nsec / 1e6));
  return o;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (argc < 1 || !arg_i64(env, argv[0], &fd)) return throw_type(env, "close(fd)");
  if (close((int)fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

/* mmap(fd, length, offset, readOnly) -> ArrayBuffer over the shared mapping (zero copy). */
static napi_value js_mmap(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t fd, len, off;
  if (argc < 4 || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &len) || !arg_i64(env, argv[2], &off) ||
      len <= 0 || off < 0)
    return throw_type(env, "mmap(fd, length, offset, readOnly)");
  int prot = arg_bool(env, argv[3]) ? PROT_READ : PROT_READ | PROT_WRITE;
  void *addr = mmap(NULL, (size_t)len, prot, MAP_SHARED, (int)fd, (off_t)off);
  if (addr == MAP_FAILED) return throw_errno(env, errno, "mmap");
  mapping_t *m = calloc(1, sizeof *m);
  if (!m) { munmap(addr, (size_t)len); return throw_errno(env, ENOMEM, "mmap"); }
  m->addr = addr;
  m->len = (size_t)len;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, (size_t)len, NULL, NULL, &ab) != napi_ok) {
    munmap(addr, (size_t)len);
    free(m);
    return throw_errno(env, ENOMEM, "napi_create_external_arraybuffer");
  }
  pthread_mutex_lock(&map_mutex);
  m->next = mappings;
  mappings = m;
  pthread_mutex_unlock(&map_mutex);
  return ab;
}

/* munmap(ab): empties every view at once; the pages go when no wait uses them any more. */
static napi_value js_munmap(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *data = NULL;
  size_t len = 0;
  bool is_ab = false;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab)
    return throw_type(env, "munmap(arrayBuffer)");
  napi_get_arraybuffer_info(env, argv[0], &data, &len);
  pthread_mutex_lock(&map_mutex);
  mapping_t *m = data ? mapping_find(data) : NULL;
  if (m) {
    m->cancel = 1;
    if (m->refs == 0) mapping_drop(m);
    else m->unmap_requested = 1;
  }
  pthread_mutex_unlock(&map_mutex);
  if (!m) return throw_type(env, "ArrayBuffer is not a live qcop mapping");
  napi_detach_arraybuffer(env, argv[0]);
  return NULL;
}

/* cancel(ab): waits on this mapping return -2 within one poll period; the mapping stays usable. */
static napi_value js_cancel(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *data = NULL;
  size_t len = 0;
  bool is_ab = false;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab)
    return throw_type(env, "cancel(arrayBuffer)");
  napi_get_arraybuffer_info(env, argv[0], &data, &len);
  pthread_mutex_lock(&map_mutex);
  mapping_t *m = data ? mapping_find(data) : NULL;
  if (m) m->cancel = 1;
  pthread_mutex_unlock(&map_mutex);
  return NULL;
}

/* ---------- liveness ---------- */

/* 1 when pid exists and is not a zombie (a killed child not yet reaped holds nothing). */
static int pid_alive(int32_t pid) {
  if (pid <= 0) return 0;
  if (kill(pid, 0) < 0 && errno == ESRCH) return 0;
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : 1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) return 0;
  return 1;
}

static napi_value js_alive(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t pid;
  if (argc < 1 || !arg_i64(env, argv[0], &pid)) return throw_type(env, "alive(pid)");
  return boolean(env, pid_alive((int32_t)pid));
}

/* ---------- futex + lock loop on the libuv threadpool ---------- */

/* 32-bit arithmetic on purpose: 64-bit division would pull libgcc (ARMv7 code) into the ARMv6 build. */
static struct timespec ms_to_ts(int64_t ms) {
  int32_t m = ms > 0x7fffffff ? 0x7fffffff : (int32_t)ms;
  struct timespec ts = {(time_t)(m / 1000), (long)(m % 1000) * 1000000L};
  return ts;
}

static int futex_wait(int32_t *addr, int32_t expected, int64_t ms) {
  struct timespec ts = ms_to_ts(ms);
  return (int)syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, NULL, 0);
}

enum { OP_FUTEX, OP_LOCK, OP_SEM };

typedef struct {
  int op;
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  mapping_t *m;
  int32_t *word;
  int32_t value;     /* expected value (futex) or own pid (lock) */
  int semid;
  int64_t timeout_ms; /* < 0: forever */
  int result;        /* futex: 0 woken, 1 changed, -1 timeout; lock: 0, 1 recovered, -1 timeout; -2 cancelled */
  int err;
} wait_req;

static void wait_execute(napi_env env, void *data) {
  (void)env;
  wait_req *r = data;
  int64_t deadline = r->timeout_ms < 0 ? -1 : now_ms() + r->timeout_ms;
  if (r->op == OP_SEM) {
    for (;;) {
      int64_t left = deadline < 0 ? 100 : deadline - now_ms();
      if (left > 100) left = 100;
      if (left < 0) left = 0;
      struct sembuf sb = {0, -1, SEM_UNDO};
      struct timespec ts = ms_to_ts(left);
      if (semtimedop(r->semid, &sb, 1, &ts) == 0) { r->result = 0; return; }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) { r->err = errno; return; }
      if (deadline >= 0 && now_ms() >= deadline) { r->result = -1; return; }
    }
  }
  if (r->op == OP_FUTEX) {
    for (;;) {
      if (r->m->cancel) { r->result = -2; return; }
      if (__atomic_load_n(r->word, __ATOMIC_SEQ_CST) != r->value) { r->result = 1; return; }
      int64_t left = deadline < 0 ? 50 : deadline - now_ms();
      if (left <= 0) { r->result = -1; return; }
      if (left > 50) left = 50;
      if (futex_wait(r->word, r->value, left) == 0) { r->result = 0; return; }
      if (errno == EAGAIN) { r->result = 1; return; }
    }
  }
  /* OP_LOCK: word = owner pid (| LOCK_WAITERS); a dead owner's lock is taken over. */
  int32_t self = r->value, *w = r->word;
  int check = 1;
  for (;;) {
    if (r->m->cancel) { r->result = -2; return; }
    int32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    if (v == 0) {
      if (__atomic_compare_exchange_n(w, &v, self | LOCK_WAITERS, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        r->result = 0;
        return;
      }
      continue;
    }
    if (check) {
      check = 0;
      if (!pid_alive(v & LOCK_PID_MASK)) {
        if (__atomic_compare_exchange_n(w, &v, self | LOCK_WAITERS, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
          r->result = 1;
          return;
        }
        continue;
      }
    }
    if (!(v & LOCK_WAITERS)) {
      int32_t nv = v | LOCK_WAITERS;
      if (!__atomic_compare_exchange_n(w, &v, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
      v = nv;
    }
    int64_t left = POLL_MS;
    if (deadline >= 0) {
      int64_t d = deadline - now_ms();
      if (d <= 0) { r->result = -1; return; }
      if (d < left) left = d;
    }
    if (futex_wait(w, v, left) < 0 && errno == ETIMEDOUT) check = 1;
  }
}

static void wait_complete(napi_env env, napi_status status, void *data) {
  wait_req *r = data;
  napi_value v;
  if (status == napi_ok && r->err) {
    napi_value code, text;
    napi_create_string_utf8(env, errno_name(r->err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(r->err), NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &v);
    napi_reject_deferred(env, r->deferred, v);
  } else {
    napi_create_int32(env, status == napi_ok ? r->result : -2, &v);
    napi_resolve_deferred(env, r->deferred, v);
  }
  if (r->keep) napi_delete_reference(env, r->keep);
  if (r->m) mapping_unref(r->m);
  napi_delete_async_work(env, r->work);
  free(r);
}

static napi_value queue_wait(napi_env env, wait_req *r, napi_value ab) {
  napi_value promise, name;
  if (napi_create_promise(env, &r->deferred, &promise) != napi_ok) {
    if (r->m) mapping_unref(r->m);
    free(r);
    return NULL;
  }
  if (ab) napi_create_reference(env, ab, 1, &r->keep);
  napi_create_string_utf8(env, "qcop.wait", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, wait_execute, wait_complete, r, &r->work);
  napi_queue_async_work(env, r->work);
  return promise;
}

/* futexWait(ab, byteOffset, expected, timeoutMs) -> Promise<0 woken | 1 changed | -1 timeout | -2 cancelled> */
static napi_value js_futex_wait(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t expected, timeout;
  int32_t *word;
  if (argc < 4 || !arg_i64(env, argv[2], &expected) || !arg_i64(env, argv[3], &timeout))
    return throw_type(env, "futexWait(ab, byteOffset, expected, timeoutMs)");
  mapping_t *m = word_of(env, argv[0], argv[1], &word);
  if (!m) return NULL;
  wait_req *r = calloc(1, sizeof *r);
  r->op = OP_FUTEX; r->m = m; r->word = word; r->value = (int32_t)expected; r->timeout_ms = timeout;
  return queue_wait(env, r, argv[0]);
}

/* futexWake(ab, byteOffset, count) -> number of waiters woken */
static napi_value js_futex_wake(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t count;
  int32_t *word;
  if (argc < 3 || !arg_i64(env, argv[2], &count)) return throw_type(env, "futexWake(ab, byteOffset, count)");
  mapping_t *m = word_of(env, argv[0], argv[1], &word);
  if (!m) return NULL;
  long n = syscall(SYS_futex, word, FUTEX_WAKE, count > INT_MAX ? INT_MAX : (int)count, NULL, NULL, 0);
  mapping_unref(m);
  if (n < 0) return throw_errno(env, errno, "futex");
  return num(env, (double)n);
}

/* lockAcquire(ab, byteOffset, pid, timeoutMs) -> Promise<0 acquired | 1 recovered | -1 timeout | -2 cancelled> */
static napi_value js_lock_acquire(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t pid, timeout;
  int32_t *word;
  if (argc < 4 || !arg_i64(env, argv[2], &pid) || !arg_i64(env, argv[3], &timeout) || pid <= 0 ||
      pid > LOCK_PID_MASK)
    return throw_type(env, "lockAcquire(ab, byteOffset, pid, timeoutMs)");
  mapping_t *m = word_of(env, argv[0], argv[1], &word);
  if (!m) return NULL;
  wait_req *r = calloc(1, sizeof *r);
  r->op = OP_LOCK; r->m = m; r->word = word; r->value = (int32_t)pid; r->timeout_ms = timeout;
  return queue_wait(env, r, argv[0]);
}

/* ---------- System V semaphores ---------- */

union semun { int val; struct semid_ds *buf; unsigned short *array; };

/* semCreate(mode, initial, gid) -> semid of a new private one-unit-array semaphore */
static napi_value js_sem_create(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t mode, initial, gid;
  if (argc < 3 || !arg_i64(env, argv[0], &mode) || !arg_i64(env, argv[1], &initial) || !arg_i64(env, argv[2], &gid))
    return throw_type(env, "semCreate(mode, initial, gid)");
  int id = semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | (int)(mode & 0777));
  if (id < 0) return throw_errno(env, errno, "semget");
  union semun arg;
  if (gid >= 0) {
    struct semid_ds ds;
    arg.buf = &ds;
    if (semctl(id, 0, IPC_STAT, arg) < 0 || (ds.sem_perm.gid = (gid_t)gid, semctl(id, 0, IPC_SET, arg) < 0)) {
      int e = errno;
      semctl(id, 0, IPC_RMID);
      return throw_errno(env, e, "semctl");
    }
  }
  arg.val = (int)initial;
  if (semctl(id, 0, SETVAL, arg) < 0) {
    int e = errno;
    semctl(id, 0, IPC_RMID);
    return throw_errno(env, e, "semctl");
  }
  return num(env, id);
}

/* semOp(semid, undoDelta, plainDelta, nowait) -> true, or false when nowait and it would block */
static napi_value js_sem_op(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t id, undo, plain;
  if (argc < 4 || !arg_i64(env, argv[0], &id) || !arg_i64(env, argv[1], &undo) || !arg_i64(env, argv[2], &plain))
    return throw_type(env, "semOp(semid, undoDelta, plainDelta, nowait)");
  int nowait = arg_bool(env, argv[3]) ? IPC_NOWAIT : 0;
  if (!nowait && (undo < 0 || plain < 0)) return throw_type(env, "semOp: blocking decrements go through semAcquire");
  struct sembuf sb[2];
  size_t n = 0;
  if (undo) sb[n++] = (struct sembuf){0, (short)undo, (short)(SEM_UNDO | nowait)};
  if (plain) sb[n++] = (struct sembuf){0, (short)plain, (short)nowait};
  if (n == 0) return boolean(env, 1);
  while (semop((int)id, sb, n) < 0) {
    if (errno == EINTR) continue;
    if (errno == EAGAIN && nowait) return boolean(env, 0);
    return throw_errno(env, errno, "semop");
  }
  return boolean(env, 1);
}

/* semAcquire(semid, timeoutMs) -> Promise<0 acquired | -1 timeout>: one unit with SEM_UNDO, on a worker */
static napi_value js_sem_acquire(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t id, timeout;
  if (argc < 2 || !arg_i64(env, argv[0], &id) || !arg_i64(env, argv[1], &timeout))
    return throw_type(env, "semAcquire(semid, timeoutMs)");
  wait_req *r = calloc(1, sizeof *r);
  r->op = OP_SEM; r->semid = (int)id; r->timeout_ms = timeout;
  return queue_wait(env, r, NULL);
}

/* semStat(semid) -> { value, uid, gid, mode, nsems } */
static napi_value js_sem_stat(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t id;
  if (argc < 1 || !arg_i64(env, argv[0], &id)) return throw_type(env, "semStat(semid)");
  struct semid_ds ds;
  union semun arg = {.buf = &ds};
  if (semctl((int)id, 0, IPC_STAT, arg) < 0) return throw_errno(env, errno, "semctl");
  int val = semctl((int)id, 0, GETVAL);
  if (val < 0) return throw_errno(env, errno, "semctl");
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "value", num(env, val));
  napi_set_named_property(env, o, "uid", num(env, ds.sem_perm.uid));
  napi_set_named_property(env, o, "gid", num(env, ds.sem_perm.gid));
  napi_set_named_property(env, o, "mode", num(env, ds.sem_perm.mode & 0777));
  napi_set_named_property(env, o, "nsems", num(env, (double)ds.sem_nsems));
  return o;
}

static napi_value js_sem_remove(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t id;
  if (argc < 1 || !arg_i64(env, argv[0], &id)) return throw_type(env, "semRemove(semid)");
  if (semctl((int)id, 0, IPC_RMID) < 0) return throw_errno(env, errno, "semctl");
  return NULL;
}

/* ---------- sockets ---------- */

static napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (argc < 1 || !arg_i64(env, argv[0], &fd)) return throw_type(env, "peerCred(fd)");
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt((int)fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) return throw_errno(env, errno, "getsockopt");
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "pid", num(env, cr.pid));
  napi_set_named_property(env, o, "uid", num(env, cr.uid));
  napi_set_named_property(env, o, "gid", num(env, cr.gid));
  return o;
}

/* sdNotify(text) -> false when NOTIFY_SOCKET is unset (or not a unix path), true once sent */
static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  ARGS(1);
  char text[4096];
  if (argc < 1 || !arg_str(env, argv[0], text, sizeof text)) return throw_type(env, "sdNotify(text)");
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return boolean(env, 0);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen >= sizeof sa.sun_path) return throw_errno(env, ENAMETOOLONG, "sd_notify");
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  ssize_t n = sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int e = errno;
  close(fd);
  if (n < 0) return throw_errno(env, e, "sendto");
  return boolean(env, 1);
}

/* ---------- module ---------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("shmOpen", js_shm_open),         FN("shmUnlink", js_shm_unlink), FN("ftruncate", js_ftruncate),
      FN("fstat", js_fstat),              FN("close", js_close),          FN("mmap", js_mmap),
      FN("munmap", js_munmap),            FN("cancel", js_cancel),            FN("alive", js_alive),          FN("futexWait", js_futex_wait),
      FN("futexWake", js_futex_wake),     FN("lockAcquire", js_lock_acquire),
      FN("semCreate", js_sem_create),     FN("semOp", js_sem_op),         FN("semAcquire", js_sem_acquire),
      FN("semStat", js_sem_stat),         FN("semRemove", js_sem_remove), FN("peerCred", js_peer_cred),
      FN("sdNotify", js_sd_notify),
#undef FN
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  napi_value page, flags;
  napi_create_int64(env, sysconf(_SC_PAGESIZE), &page);
  napi_set_named_property(env, exports, "pageSize", page);
  napi_create_object(env, &flags);
  napi_set_named_property(env, flags, "O_RDONLY", num(env, O_RDONLY));
  napi_set_named_property(env, flags, "O_RDWR", num(env, O_RDWR));
  napi_set_named_property(env, flags, "O_CREAT", num(env, O_CREAT));
  napi_set_named_property(env, flags, "O_EXCL", num(env, O_EXCL));
  napi_set_named_property(env, exports, "flags", flags);
  return exports;
}

NAPI_MODULE(qcop_native, init)
