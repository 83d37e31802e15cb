/* wait.c owns process liveness by pid (a diagnostic), futex wait/wake and semaphore acquire on libuv workers;
 * the segment lock loop is in owner.c. */
#include "qcop_native.h"

/* ---------- liveness ---------- */

/* 1 when pid exists and is not a zombie (a killed child not yet reaped holds nothing). */
int pid_alive(int32_t pid) {
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

napi_value js_alive(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t pid;
  if (argc < 1 || !arg_i64(env, argv[0], &pid)) return throw_type(env, "alive(pid)");
  return boolean(env, pid_alive((int32_t)pid));
}

/* ---------- futex and semaphore waits on the libuv threadpool ---------- */

/* 32-bit arithmetic on purpose: 64-bit division would pull libgcc (ARMv7 code) into the ARMv6 build. */
struct timespec ms_to_ts(int64_t ms) {
  int32_t m = ms > 0x7fffffff ? 0x7fffffff : (int32_t)ms;
  struct timespec ts = {(time_t)(m / 1000), (long)(m % 1000) * 1000000L};
  return ts;
}

static int futex_wait(int32_t *addr, int32_t expected, int64_t ms) {
  struct timespec ts = ms_to_ts(ms);
  return (int)syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, NULL, 0);
}

enum { OP_FUTEX, OP_SEM };

typedef struct {
  int op;
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;
  mapping_t *m;
  int32_t *word;
  int32_t value;     /* expected value (futex) */
  int semid;
  int64_t timeout_ms; /* < 0: forever */
  int result;        /* futex: 0 woken, 1 changed, -1 timeout, -2 cancelled; sem: 0 acquired, -1 timeout */
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
}

static void wait_complete(napi_env env, napi_status status, void *data) {
  wait_req *r = data;
  settle_int(env, status, r->deferred, r->err, r->result);
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
napi_value js_futex_wait(napi_env env, napi_callback_info info) {
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
napi_value js_futex_wake(napi_env env, napi_callback_info info) {
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

/* semAcquire(semid, timeoutMs) -> Promise<0 acquired | -1 timeout>: one unit with SEM_UNDO, on a worker */
napi_value js_sem_acquire(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t id, timeout;
  if (argc < 2 || !arg_i64(env, argv[0], &id) || !arg_i64(env, argv[1], &timeout))
    return throw_type(env, "semAcquire(semid, timeoutMs)");
  wait_req *r = calloc(1, sizeof *r);
  r->op = OP_SEM; r->semid = (int)id; r->timeout_ms = timeout;
  return queue_wait(env, r, NULL);
}

