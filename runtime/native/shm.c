/* shm.c owns POSIX shared memory: shm_open/unlink, ftruncate/fallocate/fstat/close, mmap/munmap and the
 * mapping registry; every mapping is also registered with the SIGBUS guard (guard.c). */
#include "qcop_native.h"

/* ---------- mappings: registry so munmap waits for in-flight waits ---------- */

static pthread_mutex_t map_mutex = PTHREAD_MUTEX_INITIALIZER;
static mapping_t *mappings;

static mapping_t *mapping_find(void *addr) {
  for (mapping_t *m = mappings; m; m = m->next)
    if (m->addr == addr) return m;
  return NULL;
}

static void mapping_drop(mapping_t *m) { /* caller holds map_mutex */
  guard_unmap(m->addr, m->len);
  for (mapping_t **p = &mappings; *p; p = &(*p)->next)
    if (*p == m) { *p = m->next; break; }
  free(m);
}

/* Resolves (ab, byteOffset) to an aligned int32 inside a live mapping; takes a ref. */
mapping_t *word_of(napi_env env, napi_value ab, napi_value off, int32_t **word) {
  void *data = NULL;
  size_t len = 0;
  int64_t o;
  if (!arg_arraybuffer(env, ab, &data, &len) || !arg_i64(env, off, &o) ||
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

void mapping_unref(mapping_t *m) {
  pthread_mutex_lock(&map_mutex);
  if (--m->refs == 0 && m->unmap_requested) mapping_drop(m);
  pthread_mutex_unlock(&map_mutex);
}

/* ---------- shm ---------- */

napi_value js_shm_open(napi_env env, napi_callback_info info) {
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

napi_value js_shm_unlink(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[256];
  if (argc < 1 || !arg_str(env, argv[0], name, sizeof name)) return throw_type(env, "shmUnlink(name)");
  if (shm_unlink(name) < 0) return throw_errno(env, errno, "shm_unlink");
  return NULL;
}

/* True when a file offset fits this build's off_t (32 bits on the ARMv6 build, which has no _FILE_OFFSET_BITS=64). */
static int fits_off(int64_t v) { return sizeof(off_t) >= 8 || v <= (int64_t)0x7fffffff; }

napi_value js_ftruncate(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t fd, size;
  if (argc < 2 || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &size) || size < 0)
    return throw_type(env, "ftruncate(fd, size)");
  if (!fits_off(size)) return throw_errno(env, EFBIG, "ftruncate");
  if (ftruncate((int)fd, (off_t)size) < 0) return throw_errno(env, errno, "ftruncate");
  return NULL;
}

/* fallocate(fd, offset, length): backs the range with pages now, so a full /dev/shm is ENOSPC here
 * instead of SIGBUS at the first write (tmpfs allocates on touch). */
napi_value js_fallocate(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t fd, off, len;
  if (argc < 3 || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &off) || !arg_i64(env, argv[2], &len) ||
      off < 0 || len <= 0)
    return throw_type(env, "fallocate(fd, offset, length)");
  if (!fits_off(off + len)) return throw_errno(env, EFBIG, "posix_fallocate");
  int e;
  do e = posix_fallocate((int)fd, (off_t)off, (off_t)len); while (e == EINTR);
  if (e) return throw_errno(env, e, "posix_fallocate");
  return NULL;
}

/* fstat() of the descriptor given as the one argument: 0, or -1 with the exception pending (TypeError naming `sig`, or errno). */
static int fstat_arg(napi_env env, napi_callback_info info, const char *sig, struct stat *st) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < 1 || !arg_i64(env, argv[0], &fd)) return throw_type(env, sig), -1;
  if (fstat((int)fd, st) < 0) return throw_errno(env, errno, "fstat"), -1;
  return 0;
}

napi_value js_fstat(napi_env env, napi_callback_info info) {
  struct stat st;
  if (fstat_arg(env, info, "fstat(fd)", &st) < 0) return NULL;
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "size", num(env, (double)st.st_size));
  napi_set_named_property(env, o, "uid", num(env, st.st_uid));
  napi_set_named_property(env, o, "gid", num(env, st.st_gid));
  napi_set_named_property(env, o, "mode", num(env, st.st_mode & 07777));
  napi_set_named_property(env, o, "mtimeMs", num(env, st.st_mtim.tv_sec * 1e3 + st.st_mtim.tv_nsec / 1e6));
  return o;
}

/* fileSize(fd) -> st_size alone: what a reader re-checks before each message, so no object is built. */
napi_value js_file_size(napi_env env, napi_callback_info info) {
  struct stat st;
  if (fstat_arg(env, info, "fileSize(fd)", &st) < 0) return NULL;
  return num(env, (double)st.st_size);
}

napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t fd;
  if (argc < 1 || !arg_i64(env, argv[0], &fd)) return throw_type(env, "close(fd)");
  if (close((int)fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

/* mmap(fd, length, offset, readOnly) -> ArrayBuffer over the shared mapping (zero copy). */
napi_value js_mmap(napi_env env, napi_callback_info info) {
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
  if (guard_add(addr, (size_t)len, prot) < 0) { /* an unguarded mapping could kill us: refuse it */
    munmap(addr, (size_t)len);
    free(m);
    return throw_errno(env, EMFILE, "mmap (fault guard table full)");
  }
  m->addr = addr;
  m->len = (size_t)len;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, (size_t)len, NULL, NULL, &ab) != napi_ok) {
    guard_unmap(addr, (size_t)len);
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
napi_value js_munmap(napi_env env, napi_callback_info info) {
  ARRAYBUFFER_ARG("munmap(arrayBuffer)");
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
napi_value js_cancel(napi_env env, napi_callback_info info) {
  ARRAYBUFFER_ARG("cancel(arrayBuffer)");
  pthread_mutex_lock(&map_mutex);
  mapping_t *m = data ? mapping_find(data) : NULL;
  if (m) m->cancel = 1;
  pthread_mutex_unlock(&map_mutex);
  return NULL;
}

