/* labelsmooth: the label-smoothed cross-entropy of rows of logits, loss and gradient, on the CPU.
 *
 * Built and loaded at run time by labelsmooth/kernels/_native.py, which documents the maths (that of
 * labelsmooth/kernels/_core.py). Compiled with -O3 -ffast-math, so that the loops vectorise and expf becomes
 * glibc's vector function (libmvec, within 1 ulp). Rows holding a non-finite logit are not computed
 * here but flagged, and the caller takes them through its eager pass; in the rows computed here, the values
 * that could still overflow float32 (sums of logits near FLT_MAX, z - m for logits masked with -FLT_MAX) are
 * formed in double or clamped, so that the fast-math assumption of finite values holds. Linked without -ffast-math, so that loading the library does
 * not change the floating-point mode (flush-to-zero) of the process.
 *
 * Per row (V logits z, target y), a tile of TILE logits at a time:
 *   pass 1: the tile converted to float32 (and soft-capped: z' = c tanh(z / c), with d = 1 - tanh^2 kept in
 *     a row buffer), whether it holds inf or nan, its maximum and sum of z (or of uw z); then, while the tile
 *     is in L1, e_k = exp(z_k - m_t) against the running maximum m_t into a row buffer of V floats (in
 *     cache), and S = sum_k exp(z_k - m), rescaled when the maximum grows (the online softmax);
 *   the loss, lse and the gradient's coefficients from m, S, z_y and zu, in double;
 *   pass 2: g_k = (e_k exp(m_t - m) C / S - B uw_k) d_k, with the target's g_y = (C p_y - B uw_y - T) d_y
 *     formed in double, each rounded once to the output type.
 * Sums are float vectors within a tile, accumulated across tiles in double.
 * table (rows x 8, float32): C0, B, T, A1, A3, cc, Zc, Zl (labelsmooth/kernels/_native.py::COLUMNS).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TILE 512
#define NCOL 8

enum { LS_F32 = 0, LS_BF16 = 1 };

int labelsmooth_abi(void) { return 4; }

/* Converts n logits to float32; returns whether any is inf or nan (from the bits: no float test). */
static uint32_t load_tile(int dtype, const void *src, int64_t n, float *restrict dst) {
    uint32_t f = 0;
    if (dtype == LS_BF16) {
        const uint16_t *restrict p = (const uint16_t *)src;
        for (int64_t k = 0; k < n; k++) {
            const uint32_t u = (uint32_t)p[k] << 16;
            memcpy(dst + k, &u, 4);
            f |= (p[k] & 0x7F80u) == 0x7F80u;
        }
    } else {
        const uint32_t *restrict p = (const uint32_t *)src;
        for (int64_t k = 0; k < n; k++) {
            memcpy(dst + k, p + k, 4);
            f |= (p[k] & 0x7F800000u) == 0x7F800000u;
        }
    }
    return f;
}

/* Rounds n finite float32 values to the output type (bfloat16: to nearest even). */
static void store_tile(int dtype, const float *restrict src, int64_t n, void *dst) {
    if (dtype == LS_BF16) {
        uint16_t *restrict p = (uint16_t *)dst;
        for (int64_t k = 0; k < n; k++) {
            uint32_t u;
            memcpy(&u, src + k, 4);
            p[k] = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
        }
    } else {
        memcpy(dst, src, (size_t)n * 4);
    }
}

/* z' = c tanh(z / c) in place and d = 1 - tanh(z / c)^2: with em = expm1(-2 |z / c|) and q = exp(-2 |z / c|),
 * tanh = sign * -em / (2 + em) (relative error ~1 ulp, small |z / c| included) and 1 - tanh^2 = 4 q / (1 + q)^2
 * (relative error ~1 ulp where the logit saturates, where 1 - t * t, or 1 + em, would cancel to 0). */
static void softcap_tile(float *restrict x, float *restrict d, int64_t n, double cap) {
    const float c = (float)cap, inv = (float)(1.0 / cap);
    for (int64_t k = 0; k < n; k++) {
        const float a = -2.0f * fabsf(x[k] * inv);
        const float em = expm1f(a), q = expf(a);
        const float den = 1.0f + q;
        x[k] = c * copysignf(-em / (2.0f + em), x[k]);
        d[k] = 4.0f * q / (den * den);
    }
}

/* Rows [0, rows) of z (row stride ldz elements) and of g (stride ldg; NULL: loss only; may be z). Returns the
 * number of rows flagged in bad (left uncomputed: g's row untouched). uw: NULL (uniform 1/V), or a row of V
 * floats per row with stride lduw (0: one shared row). cap: the soft-capping c, 0 for none. lse and correct
 * may be NULL. work: labelsmooth_workspace(V) floats of scratch, the caller's (one per thread), so that no
 * call allocates (a fresh mapping per call would page-fault on every block). */
int64_t labelsmooth_workspace(int64_t V) { return 2 * (V > 0 ? V : 1) + (V + TILE - 1) / TILE + 1; }

int64_t labelsmooth_rows(int dtype, const void *z, int64_t rows, int64_t V, int64_t ldz, void *g, int64_t ldg,
                         const int64_t *safe, const uint8_t *valid, const float *table, const float *uw,
                         int64_t lduw, double cap, float *loss, float *lse, uint8_t *correct, uint8_t *bad,
                         float *work) {
    const int64_t ntiles = (V + TILE - 1) / TILE;
    const size_t item = dtype == LS_BF16 ? 2 : 4;
    float *buf = work;                                        /* V floats: exp(z - m_t) */
    float *dbuf = cap > 0.0 ? work + (V > 0 ? V : 1) : NULL;  /* V floats: 1 - tanh^2 */
    float *mtile = work + 2 * (V > 0 ? V : 1);                /* one float per tile */
    float x[TILE];
    int64_t nbad = 0;
    for (int64_t i = 0; i < rows; i++) {
        const char *zr = (const char *)z + (size_t)(i * ldz) * item;
        const float *ur = uw != NULL ? uw + i * lduw : NULL;
        const float *tb = table + i * NCOL;
        const int64_t y = safe[i];
        float m = -FLT_MAX; /* no infinities under -ffast-math */
        float zy = 0.f;
        double S = 0.0, D = 0.0, W = 0.0;
        uint32_t nf = V == 0;
        for (int64_t t = 0; t < ntiles && !nf; t++) {
            const int64_t b = t * TILE, n = b + TILE < V ? TILE : V - b;
            nf = load_tile(dtype, zr + (size_t)b * item, n, x);
            if (nf) break;
            if (dbuf != NULL) softcap_tile(x, dbuf + b, n, cap);
            if (y >= b && y < b + n) zy = x[y - b];
            /* The tile's maximum, and the smoothing sum shifted by the tile's first logit x0:
             * sum_k uw_k (z_k - x0) (uw_k = 1 for the uniform prior, divided by V below), so that clustered
             * logits keep their digits (a row of -1e30 sums to exactly 0); it is rebased on the running
             * maximum in double. A tile whose float32 sum overflowed (logits masked with -FLT_MAX next to
             * large ones) is summed again in double. */
            const float x0 = x[0];
            float mt = -FLT_MAX, sf = 0.f, wf = (float)n;
            if (ur == NULL) {
                for (int64_t k = 0; k < n; k++) {
                    mt = x[k] > mt ? x[k] : mt;
                    sf += x[k] - x0;
                }
            } else {
                wf = 0.f;
                for (int64_t k = 0; k < n; k++) {
                    mt = x[k] > mt ? x[k] : mt;
                    sf += ur[b + k] * (x[k] - x0);
                    wf += ur[b + k];
                }
            }
            double sd = (double)sf;
            uint32_t sbits;
            memcpy(&sbits, &sf, 4);
            if ((sbits & 0x7F800000u) == 0x7F800000u) { /* inf or nan: not a float32 number */
                sd = 0.0;
                for (int64_t k = 0; k < n; k++)
                    sd += (ur == NULL ? 1.0 : (double)ur[b + k]) * ((double)x[k] - (double)x0);
            }
            const double wt = (double)wf;
            if (mt > m) {
                const double shift = (double)m - (double)mt; /* S and D are 0 before the first tile */
                S *= exp(shift);
                D += shift * W;
                m = mt;
            }
            D += sd + ((double)x0 - (double)m) * wt;
            W += wt;
            mtile[t] = m;
            float se = 0.f;
            float *restrict e = buf + b;
            for (int64_t k = 0; k < n; k++) {
                float d = x[k] - m;
                d = d < -110.f ? -110.f : d; /* exp(-110) rounds to 0; no -inf from -FLT_MAX - m */
                const float v = expf(d);
                e[k] = v;
                se += v;
            }
            S += se;
        }
        bad[i] = (uint8_t)(nf != 0);
        if (nf) {
            nbad++;
            continue;
        }
        const double zyd = (double)zy, md = (double)m;
        const double zuc = ur == NULL ? D / (double)V : D; /* zu - c m */
        const double L = log(S), ls = md + L;
        const double C0 = tb[0], B = tb[1], Ty = tb[2], A1 = tb[3], A3 = tb[4], cc = tb[5];
        const double Zc = tb[6], Zl = tb[7];
        double li = A1 * (L - (zyd - md));
        if (A3 != 0.0) li += A3 * (cc * L - zuc); /* skipped, not multiplied by 0, when not smoothing */
        if (Zl != 0.0) li += Zl * ls * ls;
        loss[i] = valid[i] ? (float)li : 0.f;
        if (lse != NULL) lse[i] = (float)ls;
        if (correct != NULL) correct[i] = (uint8_t)(zy == m);
        if (g == NULL) continue;
        const double CS = (C0 + Zc * ls) / S;
        const double uy = ur == NULL ? 1.0 / (double)V : (double)ur[y];
        char *gr = (char *)g + (size_t)(i * ldg) * item;
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t b = t * TILE, n = b + TILE < V ? TILE : V - b;
            /* exp(z - m_t) exp(m_t - m) = exp(z - m): the tile's rescaling goes into coef. */
            const double rescale = exp((double)mtile[t] - md);
            const float coef = (float)(CS * rescale);
            const float *restrict e = buf + b;
            if (ur == NULL) {
                const float off = (float)(B / (double)V);
                for (int64_t k = 0; k < n; k++) x[k] = e[k] * coef - off;
            } else {
                const float Bf = (float)B;
                for (int64_t k = 0; k < n; k++) x[k] = e[k] * coef - Bf * ur[b + k];
            }
            if (dbuf != NULL) {
                const float *restrict d = dbuf + b;
                for (int64_t k = 0; k < n; k++) x[k] *= d[k];
            }
            if (y >= b && y < b + n) { /* the target, formed in double before its one rounding */
                const double gy = (double)e[y - b] * rescale * CS - B * uy - Ty;
                x[y - b] = (float)(dbuf != NULL ? gy * (double)dbuf[y] : gy);
            }
            store_tile(dtype, x, n, gr + (size_t)b * item);
        }
    }
    return nbad;
}
