/* test_error.c: the error table. */
#include "fixture.h"

#include <errno.h>
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

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_library_codes),
      MPT_TEST(test_eauth),
      MPT_TEST(test_errno_codes),
      MPT_TEST(test_success_and_unknown),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
