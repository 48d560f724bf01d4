/* The S3 backend without a server: ListObjectsV2 parsing (good, hostile and
 * malformed answers), URL encoding, s3:// location and key validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drst/drst.h"
#include "store/s3_int.h"

typedef struct got {
    char keys[8][256];
    int n;
    int stop_after;
} got_t;

static int collect(void *opaque, const char *key)
{
    got_t *g = opaque;
    if (g->n < 8)
        snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", key);
    g->n++;
    return g->stop_after && g->n >= g->stop_after;
}

static drst_err_t parse(const char *xml, got_t *g, int *trunc, char *tok, size_t tl)
{
    int stopped;
    char err[DRST_ERRLEN];
    return s3_parse_list(xml, strlen(xml), collect, g, trunc, tok, tl, &stopped, err, sizeof(err));
}

static void test_list_ok(void **st)
{
    (void)st;
    const char *xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>t/1+=</NextContinuationToken>"
        "<Contents><Key>p/models/a&amp;b</Key><ETag>&quot;x&quot;</ETag></Contents>"
        "<Contents>\n  <Key>p/x&lt;&gt;&apos;&quot;&#65;&#x42;&#xe9;</Key></Contents>"
        "</ListBucketResult>";
    got_t g = {0};
    int trunc = 0;
    char tok[64];
    assert_int_equal(parse(xml, &g, &trunc, tok, sizeof(tok)), DRST_OK);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.keys[0], "p/models/a&b");
    assert_string_equal(g.keys[1], "p/x<>'\"AB\xc3\xa9");
    assert_int_equal(trunc, 1);
    assert_string_equal(tok, "t/1+=");
    /* empty listing, not truncated */
    memset(&g, 0, sizeof(g));
    assert_int_equal(parse("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                           &g, &trunc, tok, sizeof(tok)),
                     DRST_OK);
    assert_int_equal(g.n, 0);
    assert_int_equal(trunc, 0);
    /* the callback stops the walk */
    memset(&g, 0, sizeof(g));
    g.stop_after = 1;
    assert_int_equal(parse(xml, &g, &trunc, tok, sizeof(tok)), DRST_OK);
    assert_int_equal(g.n, 1);
}

static void test_list_bad(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key>a</Key>",                   /* unterminated */
        "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents>", /* unknown entity */
        "<ListBucketResult><Contents><Key>a&#0;</Key></Contents>",    /* NUL */
        "<ListBucketResult><Contents><Key>a&#x110000;</Key></Contents>",
        "<ListBucketResult><Contents><Key>a&amp</Key></Contents>",
        "<ListBucketResult><Contents></Contents>", /* no Key */
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Kez></Contents>",
        "<ListBucketResult",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        got_t g = {0};
        int trunc;
        char tok[64];
        drst_err_t rc = parse(bad[i], &g, &trunc, tok, sizeof(tok));
        if (rc != DRST_ERR_PARSE)
            fail_msg("accepted bad listing %zu: %s", i, bad[i]);
    }
    /* a key longer than any valid key */
    size_t n = 5000;
    char *big = malloc(n + 100);
    assert_non_null(big);
    int k = snprintf(big, n + 100, "<ListBucketResult><Contents><Key>");
    memset(big + k, 'a', n);
    snprintf(big + k + n, 100, "</Key></Contents></ListBucketResult>");
    got_t g = {0};
    int trunc;
    char tok[8];
    assert_int_equal(parse(big, &g, &trunc, tok, sizeof(tok)), DRST_ERR_PARSE);
    free(big);
    /* a token longer than the buffer */
    g.n = 0;
    assert_int_equal(
        parse("<ListBucketResult><IsTruncated>true</IsTruncated>"
              "<NextContinuationToken>0123456789</NextContinuationToken></ListBucketResult>",
              &g, &trunc, tok, sizeof(tok)),
        DRST_ERR_PARSE);
}

static void test_urlencode(void **st)
{
    (void)st;
    char out[64];
    assert_int_equal(s3_urlencode("a b/c~d+é", 1, out, sizeof(out)), 0);
    assert_string_equal(out, "a%20b/c~d%2B%C3%A9");
    assert_int_equal(s3_urlencode("a/b", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "a%2Fb");
    assert_int_equal(s3_urlencode("abcdef", 1, out, 4), -1);
}

static void test_open_bad_location(void **st)
{
    (void)st;
    char err[DRST_ERRLEN];
    setenv("AWS_ACCESS_KEY_ID", "x", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "y", 1);
    setenv("DRST_S3_ENDPOINT", "http://127.0.0.1:9", 1);
    static const char *const bad[] = {"s3://", "s3://ab", "s3://Bad_Bucket/x", "s3://bucket/../x",
                                      "s3://bucket/a//b/./c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        drst_store_t *s = drst_store_open(bad[i], err, sizeof(err));
        if (s)
            fail_msg("opened %s", bad[i]);
        assert_non_null(strstr(err, "s3:"));
    }
    setenv("DRST_S3_ENDPOINT", "ftp://127.0.0.1:9", 1);
    assert_null(drst_store_open("s3://bucket/x", err, sizeof(err)));
    assert_non_null(strstr(err, "endpoint"));
    setenv("DRST_S3_ENDPOINT", "http://alice:pw-s3cr3t@127.0.0.1:9", 1);
    assert_null(drst_store_open("s3://bucket/x", err, sizeof(err)));
    assert_null(strstr(err, "pw-s3cr3t"));
    assert_non_null(strstr(err, "must not carry credentials"));
    /* no credentials anywhere: clear message */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("HOME", "/nonexistent-drst-home", 1);
    setenv("DRST_S3_ENDPOINT", "http://127.0.0.1:9", 1);
    assert_null(drst_store_open("s3://bucket/x", err, sizeof(err)));
    assert_non_null(strstr(err, "no credentials"));
}

static void test_key_validation(void **st)
{
    (void)st;
    /* the same rule guards both backends (drst_store_key_valid in store.c) */
    static const char *const bad[] = {"",     "/abs", "a/../b", "..",   "a/./b",
                                      "a//b", "a/",   "a\001b", "a\\b", "a\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(drst_store_key_valid(bad[i]), 0);
    assert_int_equal(drst_store_key_valid("models/latest"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_ok),           cmocka_unit_test(test_list_bad),
        cmocka_unit_test(test_urlencode),         cmocka_unit_test(test_key_validation),
        cmocka_unit_test(test_open_bad_location),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
