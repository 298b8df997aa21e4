# Sources of the IPC objects (src/ipc/), added to the library's source list.
set(MPOOL_IPC_SOURCES)
