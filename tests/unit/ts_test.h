/*
 * A table-driven unit test runner in one header (libuv's style): each test
 * is a function returning void that uses CHECK*; main() runs every test in
 * TESTS and prints one line per test plus "N passed, N failed".
 */
#ifndef TS_TEST_H
#define TS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ts_test_failed_flag;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            ts_test_failed_flag = 1;                                                       \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_INT(a, b)                                                                    \
    do {                                                                                   \
        long long _a = (long long)(a), _b = (long long)(b);                                \
        if (_a != _b) {                                                                    \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,        \
                    __LINE__, #a, _a, #b, _b);                                             \
            ts_test_failed_flag = 1;                                                       \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *_a = (a), *_b = (b);                                                   \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #a, _a ? _a : "(null)", _b ? _b : "(null)");                           \
            ts_test_failed_flag = 1;                                                       \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, eps)                                                              \
    do {                                                                                   \
        double _a = (a), _b = (b);                                                         \
        if (!(fabs(_a - _b) <= (eps))) {                                                   \
            fprintf(stderr, "  %s:%d: %s == %.10g, expected %.10g (+-%g)\n", __FILE__,     \
                    __LINE__, #a, _a, _b, (double)(eps));                                  \
            ts_test_failed_flag = 1;                                                       \
            return;                                                                        \
        }                                                                                  \
    } while (0)

typedef struct ts_test_case {
    const char *name;
    void (*fn)(void);
} ts_test_case;

#define TEST(name) {#name, name}

static inline int ts_test_run(const ts_test_case *tests, size_t n, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        ts_test_failed_flag = 0;
        tests[i].fn();
        if (ts_test_failed_flag) {
            failed++;
            printf("FAIL %s\n", tests[i].name);
        } else {
            passed++;
            printf("ok   %s\n", tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TS_TEST_MAIN(...)                                                                  \
    int main(int argc, char **argv)                                                        \
    {                                                                                      \
        static const ts_test_case tests[] = {__VA_ARGS__};                                 \
        return ts_test_run(tests, sizeof tests / sizeof tests[0], argc, argv);             \
    }

#endif
