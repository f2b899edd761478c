/* labelsmooth: the label-smoothed cross-entropy of rows of logits, loss and gradient, on the CPU.
 *
 * Built and loaded at run time by labelsmooth/kernels/_native.py, which documents the maths (that of
 * labelsmooth/kernels/_core.py). Compiled with -O3 -ffast-math, so that the loops vectorise and expf becomes
 * glibc's vector expf (libmvec, within 1 ulp). Rows holding a non-finite logit are not computed here but
 * flagged, and the caller takes them through its eager pass, so the fast-math assumption of finite values
 * holds for every row computed here. Linked without -ffast-math, so that loading the library does not
 * change the floating-point mode (flush-to-zero) of the process.
 *
 * Per row i (V logits z, target y):
 *   one pass over the row, a tile of TILE logits at a time: the tile's maximum and sum of z (or of uw z),
 *     whether it holds inf or nan, then e_k = exp(z_k - m) of the tile (still in L1) against the running
 *     maximum m, into a row buffer of V floats (in cache), and S = sum_k e_k, rescaled when m grows;
 *   the loss from m, S, z_y and zu;
 *   a pass over the buffer: g_k = e_k exp(m_t - m) C / S - B uw_k (m_t: the maximum the tile was exponentiated
 *     against), rounded once to the output type; g_y = C p_y - B uw_y - T is formed in double and written
 *     over it, so that confident rows keep their target gradient.
 * Sums are float vectors within a tile, accumulated across tiles in double.
 * table (rows x 8, float32): C0, B, T, A1, A3, cc, Zc, Zl (labelsmooth/kernels/_native.py::COLUMNS).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TILE 512
#define NCOL 8

static inline float ld_f32(const float *p, int64_t k) { return p[k]; }
static inline uint32_t bits_f32(const float *p, int64_t k) { uint32_t u; memcpy(&u, p + k, 4); return u; }
static inline float st_f32(float f) { return f; }
#define NONFINITE_F32(b) (((b) & 0x7F800000u) == 0x7F800000u)

static inline float ld_bf16(const uint16_t *p, int64_t k) {
    uint32_t u = (uint32_t)p[k] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t bits_bf16(const uint16_t *p, int64_t k) { return p[k]; }
#define NONFINITE_BF16(b) (((b) & 0x7F80u) == 0x7F80u)

int labelsmooth_abi(void) { return 1; }

/* Finite values only (the rows computed here): round to nearest even. */
static inline uint16_t st_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#define DEFINE_ROWS(NAME, T, LD, BITS, ST, NONFINITE)                                                    \
    int64_t NAME(const T *z, int64_t rows, int64_t V, int64_t ldz, T *g, int64_t ldg,                   \
                 const int64_t *safe, const uint8_t *valid, const float *table, const float *uw,        \
                 int64_t lduw, float *loss, float *lse, uint8_t *correct, uint8_t *bad) {               \
        const int64_t ntiles = (V + TILE - 1) / TILE;                                                    \
        float *buf = (float *)malloc((size_t)(V > 0 ? V : 1) * sizeof(float));                          \
        float *mtile = (float *)malloc((size_t)(ntiles > 0 ? ntiles : 1) * sizeof(float));              \
        if (buf == NULL || mtile == NULL) {                                                              \
            free(buf);                                                                                   \
            free(mtile);                                                                                 \
            return -1;                                                                                   \
        }                                                                                                \
        int64_t nbad = 0;                                                                                \
        for (int64_t i = 0; i < rows; i++) {                                                             \
            const T *zr = z + i * ldz;                                                                   \
            const float *ur = uw != NULL ? uw + i * lduw : NULL;                                         \
            const float *tb = table + i * NCOL;                                                          \
            /* One pass over the row, a tile at a time (online softmax): the tile's maximum, its sum of  \
             * z (or uw z), then exp(z - m) of the tile (still in L1) against the running maximum m,     \
             * which the tile records in mtile; S is rescaled whenever m grows. */                       \
            float m = -FLT_MAX; /* no infinities under -ffast-math */                                                                         \
            double zs = 0.0, S = 0.0;                                                                    \
            uint32_t nf = 0;                                                                             \
            for (int64_t t = 0; t < ntiles; t++) {                                                       \
                const int64_t b = t * TILE, e = b + TILE < V ? b + TILE : V;                             \
                float s = 0.f, mt = -FLT_MAX;                                                           \
                uint32_t f = 0;                                                                          \
                if (ur == NULL) {                                                                        \
                    for (int64_t k = b; k < e; k++) {                                                    \
                        const float x = LD(zr, k);                                                       \
                        mt = x > mt ? x : mt;                                                            \
                        s += x;                                                                          \
                        f |= NONFINITE(BITS(zr, k));                                                     \
                    }                                                                                    \
                } else {                                                                                 \
                    for (int64_t k = b; k < e; k++) {                                                    \
                        const float x = LD(zr, k);                                                       \
                        mt = x > mt ? x : mt;                                                            \
                        s += ur[k] * x;                                                                  \
                        f |= NONFINITE(BITS(zr, k));                                                     \
                    }                                                                                    \
                }                                                                                        \
                zs += s;                                                                                 \
                nf |= f;                                                                                 \
                if (f) break;                                                                            \
                if (mt > m) {                                                                            \
                    S *= exp((double)m - (double)mt); /* S is 0 before the first tile */              \
                    m = mt;                                                                              \
                }                                                                                        \
                mtile[t] = m;                                                                            \
                float se = 0.f;                                                                          \
                for (int64_t k = b; k < e; k++) {                                                        \
                    const float x = expf(LD(zr, k) - m);                                                 \
                    buf[k] = x;                                                                          \
                    se += x;                                                                             \
                }                                                                                        \
                S += se;                                                                                 \
            }                                                                                            \
            bad[i] = (uint8_t)(nf != 0 || V == 0);                                                       \
            if (bad[i]) {                                                                                \
                nbad++;                                                                                  \
                continue;                                                                                \
            }                                                                                            \
            const int64_t y = safe[i];                                                                   \
            const double zy = (double)LD(zr, y), md = (double)m;                                         \
            const double zu = ur == NULL ? zs / (double)V : zs;                                          \
            const double L = log(S), ls = md + L;                                                        \
            const double C0 = tb[0], B = tb[1], Ty = tb[2], A1 = tb[3], A3 = tb[4], cc = tb[5];          \
            const double Zc = tb[6], Zl = tb[7];                                                         \
            double li = A1 * (L - (zy - md)) + A3 * (cc * L - (zu - cc * md)) + Zl * ls * ls;            \
            loss[i] = valid[i] ? (float)li : 0.f;                                                        \
            if (lse != NULL) lse[i] = (float)ls;                                                         \
            if (correct != NULL) correct[i] = (uint8_t)(zy == md);                                       \
            if (g == NULL) continue;                                                                     \
            const double Cd = C0 + Zc * ls, CS = Cd / S;                                                 \
            T *gr = g + i * ldg;                                                                         \
            for (int64_t t = 0; t < ntiles; t++) {                                                       \
                const int64_t b = t * TILE, e = b + TILE < V ? b + TILE : V;                             \
                /* exp(z - m_t) exp(m_t - m) = exp(z - m): the tile's rescaling goes into coef. */       \
                const float coef = (float)(CS * exp((double)mtile[t] - md));                             \
                if (ur == NULL) {                                                                        \
                    const float off = (float)(B / (double)V);                                            \
                    for (int64_t k = b; k < e; k++) gr[k] = ST(buf[k] * coef - off);                     \
                } else {                                                                                 \
                    const float Bf = (float)B;                                                           \
                    for (int64_t k = b; k < e; k++) gr[k] = ST(buf[k] * coef - Bf * ur[k]);              \
                }                                                                                        \
            }                                                                                            \
            const double uy = ur == NULL ? 1.0 / (double)V : (double)ur[y];                              \
            const double py = (double)buf[y] * exp((double)mtile[y / TILE] - md);                        \
            gr[y] = ST((float)(py * CS - B * uy - Ty));                                                  \
        }                                                                                                \
        free(buf);                                                                                       \
        free(mtile);                                                                                     \
        return nbad;                                                                                     \
    }

DEFINE_ROWS(labelsmooth_rows_f32, float, ld_f32, bits_f32, st_f32, NONFINITE_F32)
DEFINE_ROWS(labelsmooth_rows_bf16, uint16_t, ld_bf16, bits_bf16, st_bf16, NONFINITE_BF16)
