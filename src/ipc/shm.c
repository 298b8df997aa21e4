/* shm.c: mp_shm, anonymous and named (shm_open) shared memory, and the
 * shared mapping every other IPC object lives in. */
#include "ipc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mp__ipc_map(void **out, size_t len) {
  /* MAP_SHARED | MAP_ANONYMOUS: zero-filled, and the same pages in every
   * child forked after this, so a parent and its children (mp_process or
   * pool workers) see one object. */
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED)
    return -errno;
  *out = m;
  return 0;
}

void mp__ipc_unmap(void *p, size_t len) {
  if (p)
    munmap(p, len);
}

struct mp_shm {
  void *ptr;
  size_t size;
  char *name;  /* NULL: anonymous */
  pid_t owner; /* the creator of a named segment, which unlinks it; 0 else */
};

/* "/name": one leading slash, no other, 2..NAME_MAX bytes in all. */
static int shm_name_ok(const char *name) {
  size_t n = strlen(name);
  return name[0] == '/' && n >= 2 && n <= NAME_MAX &&
         strchr(name + 1, '/') == NULL;
}

int mp_shm_create(mp_shm **out, const char *name, size_t size) {
  if (!out || size == 0 || (name && !shm_name_ok(name)))
    return MP_EINVAL;
  mp_shm *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc, fd = -1;
  s->size = size;
  if (!name) {
    rc = mp__ipc_map(&s->ptr, size);
    if (rc < 0)
      goto error;
    *out = s;
    return 0;
  }
  s->name = strdup(name);
  if (!s->name) {
    rc = -ENOMEM;
    goto error;
  }
  /* O_EXCL: never adopt a segment someone else made (or planted). */
  fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    goto error;
  }
  /* Exactly 0600 whatever the umask; the size before anyone maps it. */
  if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
    rc = -errno;
    goto error_unlink;
  }
  s->ptr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s->ptr == MAP_FAILED) {
    rc = -errno;
    s->ptr = NULL;
    goto error_unlink;
  }
  mp__close(fd); /* the mapping keeps the segment */
  s->owner = getpid();
  *out = s;
  return 0;
error_unlink:
  shm_unlink(name);
  mp__close(fd);
error:
  free(s->name);
  free(s);
  return rc;
}

int mp_shm_attach(mp_shm **out, const char *name) {
  if (!out || !name || !shm_name_ok(name))
    return MP_EINVAL;
  mp_shm *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc;
  struct stat st;
  s->name = strdup(name);
  if (!s->name) {
    rc = -ENOMEM;
    goto error;
  }
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    rc = -errno;
    goto error;
  }
  if (fstat(fd, &st) < 0) {
    rc = -errno;
  } else if (st.st_size <= 0) {
    rc = MP_ESTATE; /* the creator has not sized it yet */
  } else {
    s->size = (size_t)st.st_size;
    s->ptr = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    rc = s->ptr == MAP_FAILED ? -errno : 0;
  }
  mp__close(fd);
  if (rc < 0)
    goto error;
  *out = s;
  return 0;
error:
  free(s->name);
  free(s);
  return rc;
}

void *mp_shm_ptr(const mp_shm *s) { return s ? s->ptr : NULL; }
size_t mp_shm_size(const mp_shm *s) { return s ? s->size : 0; }
const char *mp_shm_name(const mp_shm *s) { return s ? s->name : NULL; }

void mp_shm_free(mp_shm *s) {
  if (!s)
    return;
  mp__ipc_unmap(s->ptr, s->size);
  /* Only the creating process removes the name: a forked child freeing its
   * inherited copy of the handle must not unlink it under its parent. */
  if (s->name && s->owner == getpid())
    shm_unlink(s->name);
  free(s->name);
  free(s);
}
