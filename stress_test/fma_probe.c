/* Measured fp32 FMA peak: N threads each run 12 independent FMA chains on SIMD registers for a fixed time.
 * The formula peak needs the real clock; in a VM /proc/cpuinfo shows the nominal one, so measure instead.
 * Build: gcc -O2 -march=native -pthread fma_probe.c -o fma_probe     Run: ./fma_probe <threads> <seconds>
 * Prints: {"threads": N, "lanes": L, "gflops": X}   (2 FLOP per lane per FMA) */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUM _mm512_reduce_add_ps
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float SUM(vec v) { float f[8]; _mm256_storeu_ps(f, v); return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7]; }
#else
#error "needs AVX2+FMA or AVX-512"
#endif

#define CHAINS 12
#define INNER 100000L

static double seconds;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* twelve named accumulators so the compiler keeps every chain in a register (an array may spill to the stack) */
#define STEP(x) x = FMA(x, a, b)
static void *run(void *out) {
    vec a = SET1(0.999999f), b = SET1(1e-7f);
    vec c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3), c4 = SET1(4), c5 = SET1(5);
    vec c6 = SET1(6), c7 = SET1(7), c8 = SET1(8), c9 = SET1(9), c10 = SET1(10), c11 = SET1(11);
    long rounds = 0;
    double start = now();
    do {
        for (long i = 0; i < INNER; i++) {
            STEP(c0); STEP(c1); STEP(c2); STEP(c3); STEP(c4); STEP(c5);
            STEP(c6); STEP(c7); STEP(c8); STEP(c9); STEP(c10); STEP(c11);
        }
        rounds++;
    } while (now() - start < seconds);
    double elapsed = now() - start;
    vec total = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));
    total = ADD(total, ADD(ADD(c8, c9), ADD(c10, c11)));
    volatile float sink = SUM(total);   /* keeps the chains alive */
    (void)sink;
    *(double *)out = (double)rounds * INNER * CHAINS * LANES * 2 / elapsed / 1e9;
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (n < 1 || n > 1024) return 2;
    pthread_t *threads = malloc(sizeof(pthread_t) * n);
    double *gflops = calloc(n, sizeof(double)), total = 0;
    for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, run, &gflops[i]);
    for (int i = 0; i < n; i++) { pthread_join(threads[i], NULL); total += gflops[i]; }
    printf("{\"threads\": %d, \"lanes\": %d, \"gflops\": %.1f}\n", n, LANES, total);
    return 0;
}
