/* sock.c owns the socket calls Node lacks: SO_PEERCRED and the sd_notify datagram. */
#include "qcop_native.h"

/* ---------- sockets ---------- */

napi_value js_peer_cred(napi_env env, napi_callback_info info) {
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
napi_value js_sd_notify(napi_env env, napi_callback_info info) {
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

