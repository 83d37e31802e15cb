/* sem.c owns System V semaphores: create, atomic undo/plain operations, stat and removal. */
#include "qcop_native.h"

/* ---------- System V semaphores ---------- */

union semun { int val; struct semid_ds *buf; unsigned short *array; };

/* semCreate(mode, initial, gid) -> semid of a new private one-unit-array semaphore */
napi_value js_sem_create(napi_env env, napi_callback_info info) {
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
napi_value js_sem_op(napi_env env, napi_callback_info info) {
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


/* semStat(semid) -> { value, uid, gid, cuid, cgid, mode, nsems }: the creator ids cannot be changed by IPC_SET */
napi_value js_sem_stat(napi_env env, napi_callback_info info) {
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
  napi_set_named_property(env, o, "cuid", num(env, ds.sem_perm.cuid));
  napi_set_named_property(env, o, "cgid", num(env, ds.sem_perm.cgid));
  napi_set_named_property(env, o, "mode", num(env, ds.sem_perm.mode & 0777));
  napi_set_named_property(env, o, "nsems", num(env, (double)ds.sem_nsems));
  return o;
}

napi_value js_sem_remove(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t id;
  if (argc < 1 || !arg_i64(env, argv[0], &id)) return throw_type(env, "semRemove(semid)");
  if (semctl((int)id, 0, IPC_RMID) < 0) return throw_errno(env, errno, "semctl");
  return NULL;
}

