/* qcop_native.h: what the addon's C files share: includes, argument/error helpers, mappings, entry points. */
#ifndef QCOP_NATIVE_H
#define QCOP_NATIVE_H
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

/* One mmap()ed region; registered so munmap() can wait for workers still using it. */
typedef struct mapping {
  char *addr;
  size_t len;
  int refs;            /* in-flight async waits using this mapping (main thread only) */
  int unmap_requested; /* munmap() was called while refs > 0 */
  volatile int cancel; /* tells waiting workers to give up */
  struct mapping *next;
} mapping_t;

/* Reads the callback's arguments into argc/argv (at most n). */
#define ARGS(n)                                                             \
  size_t argc = n;                                                          \
  napi_value argv[n];                                                       \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)      \
    return NULL;

/* One ArrayBuffer argument: its memory in `data` (NULL once detached) and `len`; else a TypeError naming `sig`. */
#define ARRAYBUFFER_ARG(sig)                                                \
  ARGS(1);                                                                  \
  void *data = NULL;                                                        \
  size_t len = 0;                                                           \
  if (argc < 1 || !arg_arraybuffer(env, argv[0], &data, &len))              \
    return throw_type(env, sig);                                            \
  (void)len

napi_value throw_errno(napi_env env, int e, const char *syscall);
napi_value throw_type(napi_env env, const char *msg);
int arg_i64(napi_env env, napi_value v, int64_t *out);
/* The memory behind an ArrayBuffer argument; returns 0 when `v` is not one. */
int arg_arraybuffer(napi_env env, napi_value v, void **data, size_t *len);
int arg_bool(napi_env env, napi_value v);
int arg_str(napi_env env, napi_value v, char *buf, size_t cap);
napi_value num(napi_env env, double d);
napi_value boolean(napi_env env, int b);
int64_t now_ms(void);
const char *errno_name(int e);
/* Settles an async request's promise: rejected with errno `err` when set, else resolved with `result` (-2 when the work was cancelled). */
void settle_int(napi_env env, napi_status status, napi_deferred deferred, int err, int result);
mapping_t *word_of(napi_env env, napi_value ab, napi_value off, int32_t **word);
void mapping_unref(mapping_t *m);
int guard_add(void *addr, size_t len, int prot);  /* guard.c: 0, or -1 when the table is full */
void guard_unmap(void *addr, size_t len);          /* forgets the range and unmaps it */
int pid_alive(int32_t pid);
struct timespec ms_to_ts(int64_t ms); /* 32-bit division only (ARMv6 build) */

/* JavaScript entry points, registered by qcop_native.c. */
napi_value js_shm_open(napi_env env, napi_callback_info info);
napi_value js_shm_unlink(napi_env env, napi_callback_info info);
napi_value js_ftruncate(napi_env env, napi_callback_info info);
napi_value js_fallocate(napi_env env, napi_callback_info info);
napi_value js_poisoned(napi_env env, napi_callback_info info);
napi_value js_guard_faults(napi_env env, napi_callback_info info);
napi_value js_file_size(napi_env env, napi_callback_info info);
napi_value js_fstat(napi_env env, napi_callback_info info);
napi_value js_close(napi_env env, napi_callback_info info);
napi_value js_mmap(napi_env env, napi_callback_info info);
napi_value js_munmap(napi_env env, napi_callback_info info);
napi_value js_cancel(napi_env env, napi_callback_info info);
napi_value js_alive(napi_env env, napi_callback_info info);
napi_value js_futex_wait(napi_env env, napi_callback_info info);
napi_value js_futex_wake(napi_env env, napi_callback_info info);
napi_value js_sem_create(napi_env env, napi_callback_info info);
napi_value js_sem_op(napi_env env, napi_callback_info info);
napi_value js_sem_acquire(napi_env env, napi_callback_info info);
napi_value js_sem_stat(napi_env env, napi_callback_info info);
napi_value js_sem_remove(napi_env env, napi_callback_info info);
napi_value js_peer_cred(napi_env env, napi_callback_info info);
napi_value js_sd_notify(napi_env env, napi_callback_info info);
napi_value js_ofd_lock(napi_env env, napi_callback_info info);
napi_value js_ofd_held(napi_env env, napi_callback_info info);
napi_value js_owned_lock_acquire(napi_env env, napi_callback_info info);

#endif
