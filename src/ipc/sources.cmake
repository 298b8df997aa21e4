# Sources of the IPC objects (src/ipc/), added to the library's source list.
# Paths are relative to the top source directory, which includes this file.
set(MPOOL_IPC_SOURCES
  src/ipc/shm.c
  src/ipc/sync.c
  src/ipc/cond.c
  src/ipc/barrier.c
  src/ipc/value.c
  src/ipc/queue.c
  src/ipc/pipe.c
  src/ipc/listener.c)
