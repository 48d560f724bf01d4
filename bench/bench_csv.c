/* CSV reader benchmark driver.
 *   bench_csv gen FILE MB     write a numeric CSV of about MB megabytes (fixed seed)
 *   bench_csv read FILE [N]   parse FILE N times (default 5) with drst_table_read_csv,
 *                             print the median MB/s and the table shape */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "drst/drst.h"

#define NCOLS 20

static double clk(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* xorshift64*: deterministic across libcs, unlike rand(). */
static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static double urand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int gen(const char *path, double mb)
{
    FILE *f = fopen(path, "w");
    unsigned long long target = (unsigned long long)(mb * 1e6), written = 0;
    if (!f) {
        perror(path);
        return 1;
    }
    /* Columns mimic telemetry: a timestamp, counters (integers), rates with
     * a few decimals, and ratios printed with full precision. */
    written += (unsigned long long)fprintf(f, "time");
    for (int c = 1; c < NCOLS; c++)
        written += (unsigned long long)fprintf(f, ",f%d", c);
    fputc('\n', f);
    for (long r = 0; written < target; r++) {
        written += (unsigned long long)fprintf(f, "%.9f", r * 1.000123);
        for (int c = 1; c < NCOLS; c++) {
            switch (c % 4) {
            case 0:
                written += (unsigned long long)fprintf(f, ",%.0f", floor(urand() * 5e9));
                break;
            case 1:
                written += (unsigned long long)fprintf(f, ",%.3f", urand() * 10000);
                break;
            case 2:
                written += (unsigned long long)fprintf(f, ",%.17g", urand());
                break;
            default:
                written += (unsigned long long)fprintf(f, ",%.6g", urand() * 100);
                break;
            }
        }
        fputc('\n', f);
        written++;
    }
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int bench_read(const char *path, int n)
{
    struct stat st;
    double t[32], cpu[32], mb;
    char err[DRST_ERRLEN];
    size_t rows = 0, cols = 0;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    if (n < 1 || n > 32)
        n = 5;
    mb = (double)st.st_size / 1e6;
    for (int i = -1; i < n; i++) { /* i = -1: warm-up (page cache) */
        drst_table_t *tab = NULL;
        double t0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
        if (drst_table_read_csv(path, NULL, &tab, NULL, err, sizeof err) != DRST_OK) {
            fprintf(stderr, "bench_csv: %s\n", err);
            return 1;
        }
        if (i >= 0) {
            t[i] = clk(CLOCK_MONOTONIC) - t0;
            cpu[i] = clk(CLOCK_PROCESS_CPUTIME_ID) - c0;
        }
        rows = tab->nrows;
        cols = tab->ncols;
        drst_table_free(tab);
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    qsort(cpu, (size_t)n, sizeof(double), cmp);
    printf("drst_table_read_csv: %.1f MB, %zu rows x %zu cols, median of %d runs: wall %.3f s "
           "(%.1f MB/s), cpu %.3f s (%.1f MB/s)\n",
           mb, rows, cols, n, t[n / 2], mb / t[n / 2], cpu[n / 2], mb / cpu[n / 2]);
    printf("DRST_SECONDS=%.6f %.6f\n", t[n / 2], cpu[n / 2]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], strtod(argv[3], NULL));
    if (argc >= 3 && strcmp(argv[1], "read") == 0)
        return bench_read(argv[2], argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5);
    fprintf(stderr, "usage: bench_csv gen FILE MB | bench_csv read FILE [N]\n");
    return 2;
}
