/* test_sha256.c: SHA-256 against FIPS 180-4's examples and HMAC-SHA256
 * against RFC 4231's test cases (the Listener's handshake rests on them). */
#include "fixture.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

static void hex(const unsigned char *d, char *out) {
  for (int i = 0; i < MP__SHA256_LEN; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const void *m, size_t n, const char *want) {
  mp__sha256 c;
  unsigned char d[MP__SHA256_LEN];
  char h[2 * MP__SHA256_LEN + 1];
  mp__sha256_init(&c);
  mp__sha256_update(&c, m, n);
  mp__sha256_final(&c, d);
  hex(d, h);
  assert_string_equal(h, want);
}

static void test_sha256_fips(void **state) {
  (void)state;
  check_sha("", 0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  check_sha("abc", 3,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* A million 'a', fed in uneven pieces across block boundaries. */
  static char a[1000];
  memset(a, 'a', sizeof a);
  mp__sha256 c;
  mp__sha256_init(&c);
  size_t fed = 0;
  for (size_t k = 1; fed < 1000000; k = k % 997 + 1) {
    size_t n = k < 1000000 - fed ? k : 1000000 - fed;
    mp__sha256_update(&c, a, n);
    fed += n;
  }
  unsigned char d[MP__SHA256_LEN];
  char h[2 * MP__SHA256_LEN + 1];
  mp__sha256_final(&c, d);
  hex(d, h);
  assert_string_equal(
      h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* key: kn bytes of kb, or the kn bytes at key when not NULL. */
static void check_hmac(unsigned char kb, size_t kn, const char *key,
                       const void *m, size_t n, const char *want) {
  unsigned char k[256], d[MP__SHA256_LEN];
  char h[2 * MP__SHA256_LEN + 1];
  if (key)
    memcpy(k, key, kn);
  else
    memset(k, kb, kn);
  mp__hmac_sha256(k, kn, m, n, d);
  hex(d, h);
  assert_string_equal(h, want);
}

static void test_hmac_rfc4231(void **state) {
  (void)state;
  unsigned char dd[50];
  memset(dd, 0xdd, sizeof dd);
  check_hmac(
      0x0b, 20, NULL, "Hi There", 8,
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  check_hmac(
      0, 4, "Jefe", "what do ya want for nothing?", 28,
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  check_hmac(
      0xaa, 20, NULL, dd, 50,
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  check_hmac(
      0xaa, 131, NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
      54, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  check_hmac(
      0xaa, 131, NULL,
      "This is a test using a larger than block-size key and a larger "
      "than block-size data. The key needs to be hashed before being "
      "used by the HMAC algorithm.",
      152, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  /* The constant-time comparison. */
  assert_true(mp__mem_equal_ct("abcd", "abcd", 4));
  assert_false(mp__mem_equal_ct("abcd", "abce", 4));
  assert_false(mp__mem_equal_ct("xbcd", "abcd", 4));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      MPT_TEST(test_sha256_fips),
      MPT_TEST(test_hmac_rfc4231),
  };
  mpt_filter(argc, argv);
  return MPT_RUN(tests);
}
