/* C11 threads (<threads.h>) for ThreadSanitizer builds, on top of the POSIX functions TSan
 * intercepts. Linked into every executable of a KPIPE_SANITIZE=thread build (root
 * CMakeLists.txt); the executable's definitions take the place of glibc's for librdkafka.
 *
 * Why: librdkafka (Debian's 2.0.2) creates its threads with thrd_create and locks with mtx_* and
 * cnd_*. glibc 2.34+ implements those by calling its internal __pthread_* functions, which the
 * sanitizer runtimes of GCC 12 and clang 14 do not intercept (LLVM 15 added C11 interceptors).
 * TSan then knows nothing of librdkafka's threads: their first malloc crashes the process
 * ("ThreadSanitizer: SEGV on unknown address 0x000000000c38", thread "rdk:mock" or "rdk:main"),
 * and memory handed from them to kpipe's threads through librdkafka's queues would be reported
 * as races, the locks that order it being invisible. Each function below is what glibc does,
 * with the public pthread_* functions (glibc 2.36 nptl/thrd_create.c, mtx_*.c, cnd_*.c,
 * call_once.c, thrd_priv.h). */
#define _XOPEN_SOURCE 700  // pthread_mutexattr_settype, pthread_mutex_timedlock

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int result(int error) {
  switch (error) {
    case 0:
      return thrd_success;
    case ENOMEM:
      return thrd_nomem;
    case ETIMEDOUT:
      return thrd_timedout;
    case EBUSY:
      return thrd_busy;
    default:
      return thrd_error;
  }
}

struct start {
  thrd_start_t func;
  void* arg;
};

static void* run(void* p) {
  struct start start = *(struct start*)p;
  free(p);
  return (void*)(intptr_t)start.func(start.arg);
}

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  struct start* start = malloc(sizeof *start);
  if (start == NULL) return thrd_nomem;
  start->func = func;
  start->arg = arg;
  const int error = pthread_create((pthread_t*)thr, NULL, run, start);
  if (error != 0) free(start);
  return result(error);
}

int thrd_join(thrd_t thr, int* res) {
  void* value;
  const int error = pthread_join((pthread_t)thr, &value);
  if (error == 0 && res != NULL) *res = (int)(intptr_t)value;
  return result(error);
}

int thrd_detach(thrd_t thr) { return result(pthread_detach((pthread_t)thr)); }

_Noreturn void thrd_exit(int res) { pthread_exit((void*)(intptr_t)res); }

int mtx_init(mtx_t* mutex, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(
      &attr, (type & mtx_recursive) ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_NORMAL);
  const int error = pthread_mutex_init((pthread_mutex_t*)mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return result(error);
}

int mtx_lock(mtx_t* mutex) { return result(pthread_mutex_lock((pthread_mutex_t*)mutex)); }

int mtx_timedlock(mtx_t* restrict mutex, const struct timespec* restrict time_point) {
  return result(pthread_mutex_timedlock((pthread_mutex_t*)mutex, time_point));
}

int mtx_trylock(mtx_t* mutex) { return result(pthread_mutex_trylock((pthread_mutex_t*)mutex)); }

int mtx_unlock(mtx_t* mutex) { return result(pthread_mutex_unlock((pthread_mutex_t*)mutex)); }

void mtx_destroy(mtx_t* mutex) { pthread_mutex_destroy((pthread_mutex_t*)mutex); }

int cnd_init(cnd_t* cond) { return result(pthread_cond_init((pthread_cond_t*)cond, NULL)); }

int cnd_signal(cnd_t* cond) { return result(pthread_cond_signal((pthread_cond_t*)cond)); }

int cnd_broadcast(cnd_t* cond) { return result(pthread_cond_broadcast((pthread_cond_t*)cond)); }

int cnd_wait(cnd_t* cond, mtx_t* mutex) {
  return result(pthread_cond_wait((pthread_cond_t*)cond, (pthread_mutex_t*)mutex));
}

int cnd_timedwait(cnd_t* restrict cond, mtx_t* restrict mutex,
                  const struct timespec* restrict time_point) {
  return result(pthread_cond_timedwait((pthread_cond_t*)cond, (pthread_mutex_t*)mutex, time_point));
}

void cnd_destroy(cnd_t* cond) { pthread_cond_destroy((pthread_cond_t*)cond); }

void call_once(once_flag* flag, void (*func)(void)) { pthread_once((pthread_once_t*)flag, func); }
