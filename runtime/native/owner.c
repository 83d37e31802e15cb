/* owner.c owns liveness that the kernel keeps: open-file-description (OFD) locks on a shm object's
 * descriptor, dropped by the kernel when the last descriptor of the holder goes (its death included),
 * whatever pid namespace it lives in; and the segment lock loop built on them (docs/SHM.md §4, §5). */
#define _FILE_OFFSET_BITS 64 /* F_OFD_* need the 64-bit struct flock on 32-bit ARM */
#include "qcop_native.h"

static int ofd(int fd, int cmd, short type, int64_t start, int64_t len, struct flock *out) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)start;
  fl.l_len = (off_t)len;
  int r;
  do r = fcntl(fd, cmd, &fl); while (r < 0 && errno == EINTR);
  if (out) *out = fl;
  return r;
}

static int range_args(napi_env env, napi_value *argv, int64_t *fd, int64_t *start, int64_t *len) {
  return arg_i64(env, argv[0], fd) && arg_i64(env, argv[1], start) && arg_i64(env, argv[2], len) && *fd >= 0 &&
         *start >= 0 && *len > 0;
}

/* ofdLock(fd, start, len, type 0 unlock | 1 read | 2 write) -> false when another description holds a conflicting lock */
napi_value js_ofd_lock(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t fd, start, len, type;
  if (argc < 4 || !range_args(env, argv, &fd, &start, &len) || !arg_i64(env, argv[3], &type) || type < 0 || type > 2)
    return throw_type(env, "ofdLock(fd, start, len, type)");
  short t = type == 2 ? F_WRLCK : type == 1 ? F_RDLCK : F_UNLCK;
  if (ofd((int)fd, F_OFD_SETLK, t, start, len, NULL) < 0) {
    if (errno == EAGAIN || errno == EACCES) return boolean(env, 0);
    return throw_errno(env, errno, "fcntl(F_OFD_SETLK)");
  }
  return boolean(env, 1);
}

/* ofdHeld(fd, start, len) -> 0 free, 1 read-locked, 2 write-locked, by a description other than fd's */
napi_value js_ofd_held(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t fd, start, len;
  if (argc < 3 || !range_args(env, argv, &fd, &start, &len)) return throw_type(env, "ofdHeld(fd, start, len)");
  struct flock fl;
  if (ofd((int)fd, F_OFD_GETLK, F_WRLCK, start, len, &fl) < 0) return throw_errno(env, errno, "fcntl(F_OFD_GETLK)");
  return num(env, fl.l_type == F_UNLCK ? 0 : fl.l_type == F_RDLCK ? 1 : 2);
}

/* ---------- the segment lock: the byte lock excludes, the word carries waiters and "died holding it" ---------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  mapping_t *m;
  int32_t *word;
  int fd;
  int64_t byte;
  int32_t self;
  int64_t timeout_ms; /* < 0: forever */
  int result;         /* 0 acquired, 1 recovered, -1 timeout, -2 cancelled */
  int err;
} owned_req;

static void futex_sleep(int32_t *w, int32_t expected, int64_t ms) {
  struct timespec ts = ms_to_ts(ms);
  syscall(SYS_futex, w, FUTEX_WAIT, expected, &ts, NULL, 0);
}

/* Holding the byte lock, the word is ours: a non-zero owner left in it is a holder that died holding the lock. */
static int take_word(int32_t *w, int32_t self) {
  int32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(w, &v, self | (v & LOCK_WAITERS), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return (v & LOCK_PID_MASK) ? 1 : 0;
}

static void owned_execute(napi_env env, void *data) {
  (void)env;
  owned_req *r = data;
  int64_t deadline = r->timeout_ms < 0 ? -1 : now_ms() + r->timeout_ms;
  int32_t *w = r->word;
  for (;;) {
    if (r->m->cancel) { r->result = -2; return; }
    if (ofd(r->fd, F_OFD_SETLK, F_WRLCK, r->byte, 1, NULL) == 0) { r->result = take_word(w, r->self); return; }
    if (errno != EAGAIN && errno != EACCES) { r->err = errno; return; }
    int64_t left = POLL_MS;
    if (deadline >= 0) {
      int64_t d = deadline - now_ms();
      if (d <= 0) { r->result = -1; return; }
      if (d < left) left = d;
    }
    int32_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    if (v == 0) { futex_sleep(w, 0, 1); continue; } /* a holder between its byte lock and its word */
    if (!(v & LOCK_WAITERS)) {
      int32_t nv = v | LOCK_WAITERS;
      if (!__atomic_compare_exchange_n(w, &v, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
      v = nv;
    }
    /* A holder's death drops its byte lock but wakes nobody: the poll period bounds the recovery time. */
    futex_sleep(w, v, left);
  }
}

static void owned_complete(napi_env env, napi_status status, void *data) {
  owned_req *r = data;
  settle_int(env, status, r->deferred, r->err, r->result);
  if (r->keep) napi_delete_reference(env, r->keep);
  mapping_unref(r->m);
  napi_delete_async_work(env, r->work);
  free(r);
}

/* ownedLockAcquire(ab, wordOffset, fd, lockByte, pid, timeoutMs) -> Promise<0 | 1 recovered | -1 timeout | -2 cancelled> */
napi_value js_owned_lock_acquire(napi_env env, napi_callback_info info) {
  ARGS(6);
  int64_t fd, byte, pid, timeout;
  int32_t *word;
  if (argc < 6 || !arg_i64(env, argv[2], &fd) || !arg_i64(env, argv[3], &byte) || !arg_i64(env, argv[4], &pid) ||
      !arg_i64(env, argv[5], &timeout) || fd < 0 || byte < 0 || pid <= 0 || pid > LOCK_PID_MASK)
    return throw_type(env, "ownedLockAcquire(ab, wordOffset, fd, lockByte, pid, timeoutMs)");
  mapping_t *m = word_of(env, argv[0], argv[1], &word);
  if (!m) return NULL;
  owned_req *r = calloc(1, sizeof *r);
  if (!r) { mapping_unref(m); return throw_errno(env, ENOMEM, "ownedLockAcquire"); }
  r->m = m; r->word = word; r->fd = (int)fd; r->byte = byte; r->self = (int32_t)pid; r->timeout_ms = timeout;
  napi_value promise, name;
  if (napi_create_promise(env, &r->deferred, &promise) != napi_ok) {
    mapping_unref(m);
    free(r);
    return NULL;
  }
  napi_create_reference(env, argv[0], 1, &r->keep);
  napi_create_string_utf8(env, "qcop.ownedLock", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, owned_execute, owned_complete, r, &r->work);
  napi_queue_async_work(env, r->work);
  return promise;
}
