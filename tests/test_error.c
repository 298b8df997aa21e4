/* test_error.c: the error table. */
#include "fixture.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static void test_library_codes(void **state) {
  (void)state;
  static const struct { int code; const char *name; } codes[] = {
      {MP_ECRASHED, "ECRASHED"}, {MP_ETIMEDOUT, "ETIMEDOUT"},
      {MP_ETASK, "ETASK"},       {MP_ECLOSED, "ECLOSED"},
      {MP_ESTATE, "ESTATE"},     {MP_EPROTO, "EPROTO"},
      {MP_EOF, "EOF"},           {MP_EPEERDEAD, "EPEERDEAD"},
      {MP_EOWNERDEAD, "EOWNERDEAD"}, {MP_ENOFUNC, "ENOFUNC"},
      {MP_EBROKEN, "EBROKEN"},   {MP_EAUTH, "EAUTH"}};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    assert_true(codes[i].code < -1000);
    assert_string_equal(mp_err_name(codes[i].code), codes[i].name);
    assert_string_not_equal(mp_strerror(codes[i].code), "unknown error");
    for (size_t k = 0; k < i; k++)
      assert_int_not_equal(codes[i].code, codes[k].code);
  }
}

static void test_eauth(void **state) {
  (void)state;
  assert_int_equal(MP_EAUTH, -1012);
  assert_string_equal(mp_strerror(MP_EAUTH),
                      "authentication with the peer failed");
}

static void test_errno_codes(void **state) {
  (void)state;
  assert_int_equal(MP_EINVAL, -EINVAL);
  assert_string_equal(mp_err_name(-EAGAIN), "EAGAIN");
  assert_string_equal(mp_err_name(-EMFILE), "EMFILE");
  assert_string_equal(mp_err_name(MP_EINVAL), "EINVAL");
  assert_string_equal(mp_err_name(-EMSGSIZE), "EMSGSIZE");
  assert_string_equal(mp_err_name(-EHOSTDOWN), "EHOSTDOWN"); /* MPI: every rank lost */
  assert_string_equal(mp_strerror(-EAGAIN), strerror(EAGAIN));
  assert_string_equal(mp_strerror(-ENOMEM), strerror(ENOMEM));
}

static void test_success_and_unknown(void **state) {
  (void)state;
  assert_string_equal(mp_err_name(0), "OK");
  assert_string_equal(mp_strerror(0), "success");
  assert_string_equal(mp_err_name(-999), "UNKNOWN");
  assert_string_equal(mp_err_name(-5000), "UNKNOWN");
  assert_string_equal(mp_err_name(42), "UNKNOWN");
  assert_string_equal(mp_strerror(-5000), "unknown error");
  assert_string_equal(mp_version(), "0.1.0");
}

/* Every errno value this libc knows has its name and libc's own text,
 * including the listener's -EADDRINUSE and -ECONNREFUSED. */
static void test_every_errno_named(void **state) {
  (void)state;
  assert_string_equal(mp_err_name(-EADDRINUSE), "EADDRINUSE");
  assert_string_equal(mp_strerror(-EADDRINUSE), strerror(EADDRINUSE));
  assert_string_equal(mp_err_name(-ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(mp_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
  assert_string_equal(mp_err_name(-EHWPOISON), "EHWPOISON");
  int known = 0;
  for (int e = 1; e < 1000; e++) {
    const char *desc = strerrordesc_np(e);
    if (!desc)
      continue;
    known++;
    const char *name = strerrorname_np(e);
    if (strcmp(mp_err_name(-e), "UNKNOWN") == 0)
      fail_msg("errno %d (%s) has no name", e, name ? name : "?");
    /* A value with two names (EAGAIN, EWOULDBLOCK) gets one of them. */
    if (name && e != EDEADLOCK && e != EWOULDBLOCK && e != ENOTSUP)
      assert_string_equal(mp_err_name(-e), name);
    assert_string_equal(mp_strerror(-e), desc);
  }
  assert_true(known >= 130);
  /* In errno's range yet no errno: still unknown, never NULL. */
  assert_string_equal(mp_err_name(-900), "UNKNOWN");
  assert_string_equal(mp_strerror(-900), "unknown error");
}

/* Texts are static: two threads asking for different codes at once each
 * get their own code's text, and a text stays put after other calls. */
static void *strerror_loop(void *arg) {
  int code = *(int *)arg;
  const char *want = strerror(-code), *first = mp_strerror(code);
  for (int i = 0; i < 20000; i++) {
    const char *s = mp_strerror(code);
    if (s != first || strcmp(s, want) != 0)
      return (void *)1;
  }
  return NULL;
}

static void test_strerror_threads(void **state) {
  (void)state;
  int codes[2] = {-EADDRINUSE, -ECONNREFUSED};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&t[i], NULL, strerror_loop, &codes[i]), 0);
  for (int i = 0; i < 2; i++) {
    void *bad;
    assert_int_equal(pthread_join(t[i], &bad), 0);
    assert_null(bad);
  }
  const char *a = mp_strerror(-EADDRINUSE);
  (void)mp_strerror(-ECONNREFUSED);
  assert_string_equal(a, strerror(EADDRINUSE));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_library_codes),
      MPT_TEST(test_eauth),
      MPT_TEST(test_errno_codes),
      MPT_TEST(test_success_and_unknown),
      MPT_TEST(test_every_errno_named),
      MPT_TEST(test_strerror_threads),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
