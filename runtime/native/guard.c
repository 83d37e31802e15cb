/* guard.c owns the SIGBUS fault guard: every mapping the addon makes is registered here, and a fault
 * inside one (the file was shrunk under it, or /dev/shm had no page left) replaces the whole range
 * with private zero pages and marks it poisoned instead of killing the process; the faulting access
 * resumes, also from JavaScript. The idea is Xorg's os/busfault.c. docs/SHM.md §10. */
#include "qcop_native.h"

#define GUARD_MAX 8192

enum { FREE = 0, LIVE = 1, POISONED = 2 };

typedef struct {
  uintptr_t start;
  size_t len;
  int prot;
  int state;
} guard_t;

/* Fixed, so the handler never allocates; entries in use all lie below `high`. */
static guard_t table[GUARD_MAX];
static int high;
static int spin; /* taken by the handler too: held only around table updates that touch no guarded page */
static uint32_t faults;
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void lock(void) {
  while (__atomic_exchange_n(&spin, 1, __ATOMIC_ACQUIRE)) sched_yield();
}

static void unlock(void) { __atomic_store_n(&spin, 0, __ATOMIC_RELEASE); }

/* Not ours: hand it to whoever handled SIGBUS before us, else die of it as if we were not here. */
static void chain(int sig, siginfo_t *si, void *ctx) {
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
    previous.sa_sigaction(sig, si, ctx);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, NULL);
  raise(sig); /* pending until we return; a fault would also re-fault under SIG_DFL */
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx) {
  int saved = errno;
  int handled = 0;
  if (si && si->si_code > 0) { /* raised by the kernel for an access, not sent with kill() */
    uintptr_t a = (uintptr_t)si->si_addr;
    lock();
    for (int i = 0; i < high; i++) {
      guard_t *g = &table[i];
      if (g->state != LIVE || a < g->start || a - g->start >= g->len) continue;
      void *r = mmap((void *)g->start, g->len, g->prot, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (r != MAP_FAILED) {
        g->state = POISONED;
        __atomic_add_fetch(&faults, 1, __ATOMIC_SEQ_CST);
        handled = 1;
      }
      break;
    }
    unlock();
  }
  errno = saved;
  if (!handled) chain(sig, si, ctx);
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

int guard_add(void *addr, size_t len, int prot) {
  pthread_once(&installed, install);
  int slot = -1;
  lock();
  for (int i = 0; i < high; i++)
    if (table[i].state == FREE) { slot = i; break; }
  if (slot < 0 && high < GUARD_MAX) slot = high++;
  if (slot >= 0) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    table[slot].start = (uintptr_t)addr;
    table[slot].len = (len + page - 1) & ~(page - 1);
    table[slot].prot = prot;
    table[slot].state = LIVE;
  }
  unlock();
  return slot < 0 ? -1 : 0;
}

/* Unmaps under the lock, so the handler can never map zero pages over a range reused meanwhile. */
void guard_unmap(void *addr, size_t len) {
  lock();
  for (int i = 0; i < high; i++)
    if (table[i].state != FREE && table[i].start == (uintptr_t)addr) { table[i].state = FREE; break; }
  while (high > 0 && table[high - 1].state == FREE) high--;
  munmap(addr, len);
  unlock();
}

int guard_poisoned(void *addr) {
  int p = 0;
  lock();
  for (int i = 0; i < high; i++)
    if (table[i].state != FREE && table[i].start == (uintptr_t)addr) { p = table[i].state == POISONED; break; }
  unlock();
  return p;
}

/* poisoned(ab) -> true when a fault replaced this mapping with zero pages: what it shows is not the file's. */
napi_value js_poisoned(napi_env env, napi_callback_info info) {
  ARRAYBUFFER_ARG("poisoned(arrayBuffer)");
  return boolean(env, data != NULL && guard_poisoned(data));
}

/* guardFaults() -> how many mappings of this process a fault has poisoned so far (cheap to poll). */
napi_value js_guard_faults(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, __atomic_load_n(&faults, __ATOMIC_SEQ_CST));
}
