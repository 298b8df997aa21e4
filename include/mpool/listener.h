/*
 * mpool/listener.h: Listener and Client, as multiprocessing.connection:
 * connections between processes that are not parent and child.
 *
 * Include <mpool.h>, which includes every part in order; its opening
 * comment says what all parts share (the order of calls, errors, processes
 * and signals, threads, how functions cross). This header also compiles
 * alone.
 */
#ifndef MPOOL_LISTENER_H
#define MPOOL_LISTENER_H

#include <stddef.h>

#include "common.h"
#include "error.h"
#include "ipc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Listener and Client: multiprocessing.connection ---- */

/*
 * Connections between processes that are not parent and child, over a unix
 * socket, as Python's Listener and Client:
 *
 *   l = Listener(address, authkey=k)   mp_listener_create(&l, address, &(mp_listener_opts){ .authkey = k, .authkey_len = n })
 *   c = l.accept()                     mp_listener_accept(l, &c, timeout)
 *   c = Client(address, authkey=k)     mp_client_connect(&c, address, &(mp_client_opts){ .authkey = k, .authkey_len = n }, timeout)
 *
 * A connection is an mp_pipe end: mp_pipe_send, mp_pipe_recv, mp_pipe_poll,
 * mp_pipe_free, with every promise of mp_pipe (whole messages of any size
 * up to max_msg, MP_EPEERDEAD when the other side is gone). A child
 * forked afterwards inherits it as it inherits a pipe end; the listening
 * socket itself is not kept by children the library forks.
 *
 * Addresses: "/path/to/sock" (or any path: a socket file, created by the
 * listener, removed by mp_listener_free in the creating process if it is
 * still the one it bound; the directory's permissions say who may
 * connect), or "@name": Linux's abstract namespace (no file; any process
 * in the same network namespace may connect, so use an authkey).
 * Authentication: with an authkey (any bytes) the two sides run Python's
 * mutual challenge: each sends 32 random bytes that the other must answer
 * with their HMAC-SHA256 under the key. The key never crosses the socket.
 * A side whose peer does not know the key gets MP_EAUTH, and the
 * connection is closed. Both sides must use a key or neither: a client
 * without one that connects to a listener with one receives its challenge
 * as its first message, and the listener's accept fails when the client
 * does not answer (MP_EAUTH or MP_ETIMEDOUT).
 */
typedef struct mp_listener mp_listener;

/* Listener options; NULL or { 0 } means defaults. */
typedef struct mp_listener_opts {
  /* The key clients must prove they know (copied); NULL: no
   * authentication. authkey_len may be 0 with a non-NULL key. */
  const void *authkey;
  size_t authkey_len;
  /* The accepted connections' max_msg, as mp_pipe_create's; 0: 64 KiB. */
  size_t max_msg;
  /* Connections waiting for accept before clients are held off; 0: 16. */
  int backlog;
} mp_listener_opts;

/*
 * Bind and listen on address ("/path", "@abstract-name"; NULL: a fresh
 * abstract name, see mp_listener_address). Returns 0 and sets *out;
 * MP_EINVAL (NULL out, an empty address, a negative backlog, authkey_len
 * without authkey, max_msg over INT_MAX / 2); -EADDRINUSE when the
 * address is taken (a socket file left by a dead listener too: remove it);
 * -ENAMETOOLONG (over 107 bytes); -EACCES, -ENOENT (a path's directory);
 * -EMFILE; -ENOMEM.
 */
MP_EXPORT int mp_listener_create(mp_listener **out, const char *address,
                                 const mp_listener_opts *opts);

/*
 * Python's accept(): wait up to timeout seconds for a client, and
 * authenticate it when the listener has a key (within the same timeout).
 * Returns 0 and sets *conn to a new mp_pipe end (the caller frees it);
 * MP_ETIMEDOUT; MP_EAUTH when the client failed the challenge or refused
 * ours (its connection is closed; accept again for the next); MP_EPEERDEAD
 * when it left during the challenge; MP_EINVAL; -EMFILE, -ENOMEM.
 * mp_wait with MP_WAIT_LISTENER says when a client waits.
 */
MP_EXPORT int mp_listener_accept(mp_listener *l, mp_pipe **conn,
                                 double timeout);

/* The address as given, or the one made up for NULL ("@mpool-..."); owned
 * by the listener. NULL for NULL. */
MP_EXPORT const char *mp_listener_address(const mp_listener *l);

/*
 * Stop listening and release the listener; in the creating process, remove
 * a path's socket file if it is still the one bound. Connections already
 * accepted stay open. free(NULL) is a no-op.
 */
MP_EXPORT void mp_listener_free(mp_listener *l);

/* Client options; NULL or { 0 } means defaults. */
typedef struct mp_client_opts {
  /* The listener's key (see mp_listener_opts); NULL: none. */
  const void *authkey;
  size_t authkey_len;
  /* The connection's max_msg, as mp_pipe_create's; 0: 64 KiB. */
  size_t max_msg;
} mp_client_opts;

/*
 * Python's Client(address, authkey): connect to a listener and, with a
 * key, authenticate, all within timeout seconds. Returns 0 and sets *conn
 * (an mp_pipe end the caller frees); -ECONNREFUSED (nobody listens
 * there), -ENOENT (no such path); MP_EAUTH (the listener refused our
 * answer, or failed our challenge); MP_ETIMEDOUT (the listener's backlog
 * stayed full, or it did not answer in time); MP_EPEERDEAD (it closed the
 * connection during the challenge); MP_EINVAL; -ENAMETOOLONG; -EMFILE;
 * -ENOMEM. On error nothing is left open.
 */
MP_EXPORT int mp_client_connect(mp_pipe **conn, const char *address,
                                const mp_client_opts *opts, double timeout);

#ifdef __cplusplus
}
#endif

#endif /* MPOOL_LISTENER_H */
