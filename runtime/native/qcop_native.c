/* qcop_native.c owns the addon's module table, errno errors and argument helpers. The system calls
 * live beside it: shm.c (shm_open/mmap), guard.c (the SIGBUS fault guard over every mapping),
 * wait.c (futex, semaphore waits), owner.c (OFD locks, the segment lock loop), sem.c (System V
 * semaphores), sock.c (SO_PEERCRED, sd_notify). Pure C over N-API (NAPI_VERSION 8); docs/SHM.md. */
#include "qcop_native.h"

/* ---------- errors ---------- */

const char *errno_name(int e) {
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

napi_value throw_errno(napi_env env, int e, const char *syscall) {
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

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

/* ---------- argument helpers ---------- */


int arg_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) return 0;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

int arg_arraybuffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return 0;
  return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
}

int arg_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_boolean) napi_get_value_bool(env, v, &b);
  return b;
}

/* Copies a JS string into buf; returns 0 when it is not a string or too long. */
int arg_str(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) return 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len + 1 > cap) return 0;
  napi_get_value_string_utf8(env, v, buf, cap, &len);
  return strlen(buf) == len; /* refuse embedded NUL */
}

napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value boolean(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

void settle_int(napi_env env, napi_status status, napi_deferred deferred, int err, int result) {
  napi_value v;
  if (status == napi_ok && err) {
    napi_value code, text;
    napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &v);
    napi_reject_deferred(env, deferred, v);
  } else {
    napi_create_int32(env, status == napi_ok ? result : -2, &v);
    napi_resolve_deferred(env, deferred, v);
  }
}

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- module ---------- */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
      FN("shmOpen", js_shm_open),         FN("shmUnlink", js_shm_unlink), FN("ftruncate", js_ftruncate),
      FN("fstat", js_fstat),              FN("close", js_close),          FN("mmap", js_mmap),
      FN("munmap", js_munmap),            FN("cancel", js_cancel),            FN("alive", js_alive),          FN("futexWait", js_futex_wait),
      FN("futexWake", js_futex_wake),
      FN("semCreate", js_sem_create),     FN("semOp", js_sem_op),         FN("semAcquire", js_sem_acquire),
      FN("semStat", js_sem_stat),         FN("semRemove", js_sem_remove), FN("peerCred", js_peer_cred),
      FN("sdNotify", js_sd_notify),
      FN("fallocate", js_fallocate),      FN("poisoned", js_poisoned),    FN("guardFaults", js_guard_faults),
      FN("fileSize", js_file_size),
      FN("ofdLock", js_ofd_lock),         FN("ofdHeld", js_ofd_held),     FN("ownedLockAcquire", js_owned_lock_acquire),
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
