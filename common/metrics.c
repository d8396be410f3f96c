#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { CM_COUNTER, CM_GAUGE, CM_HISTOGRAM } cm_metric_type_t;

static const char *const type_names[] = {"counter", "gauge", "histogram"};

const double cm_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                             0.025,  0.05,  0.1,    0.25,  0.5,
                                             1,      2.5,   5,      10};
const size_t cm_metrics_latency_bucket_cnt =
    sizeof(cm_metrics_latency_buckets) / sizeof(cm_metrics_latency_buckets[0]);

typedef struct cm_family cm_family_t;

struct cm_metric {
        cm_family_t *fam;
        char *labels; /* rendered pairs, escaped: a="x",b="y"; "" for none */
        /* counter, gauge: the value; histogram: the sum; a double's bits */
        _Atomic uint64_t bits;
        /* histogram: per-bucket counts (not cumulative), bound_cnt + 1 with
         * the +Inf bucket last */
        _Atomic uint64_t *buckets;
        cm_metric_t *next;
};

struct cm_family {
        char *name; /* with the prefix */
        char *help;
        cm_metric_type_t type;
        double *bounds;
        size_t bound_cnt;
        cm_metric_t *first, *last;
        cm_family_t *next;
};

struct cm_metrics {
        pthread_mutex_t lock;
        char *prefix;
        cm_family_t *first, *last;
};

static uint64_t to_bits(double v)
{
        uint64_t b;

        memcpy(&b, &v, sizeof(b));
        return b;
}

static double from_bits(uint64_t b)
{
        double v;

        memcpy(&v, &b, sizeof(v));
        return v;
}

/* Adds v to the double held in *bits (compare-and-swap). */
static void atomic_add_double(_Atomic uint64_t *bits, double v)
{
        uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);

        while (!atomic_compare_exchange_weak_explicit(
            bits, &old, to_bits(from_bits(old) + v), memory_order_relaxed,
            memory_order_relaxed))
                ;
}

/* Appends v the shortest way that reads back the same: integers without a
 * decimal point, +Inf, -Inf and NaN as Prometheus spells them. */
static void add_value(cm_buf_t *b, double v)
{
        char s[64];

        if (isnan(v)) {
                cm_buf_adds(b, "NaN");
                return;
        }
        if (isinf(v)) {
                cm_buf_adds(b, v > 0 ? "+Inf" : "-Inf");
                return;
        }
        snprintf(s, sizeof(s), "%.15g", v);
        if (strtod(s, NULL) != v)
                snprintf(s, sizeof(s), "%.17g", v);
        cm_buf_adds(b, s);
}

/* Appends s with '\\' and '\n' escaped, and '"' too when quote is set
 * (label values; HELP text escapes only the first two). */
static void add_escaped(cm_buf_t *b, const char *s, int quote)
{
        for (; *s; s++) {
                if (*s == '\\')
                        cm_buf_adds(b, "\\\\");
                else if (*s == '\n')
                        cm_buf_adds(b, "\\n");
                else if (*s == '"' && quote)
                        cm_buf_adds(b, "\\\"");
                else
                        cm_buf_add(b, s, 1);
        }
}

static char *render_labels(const char *const *labels)
{
        cm_buf_t b = CM_BUF_INIT;
        size_t i;

        for (i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
                if (i / 2 >= CM_METRICS_LABELS_MAX)
                        break;
                cm_buf_addf(&b, "%s%s=\"", i ? "," : "", labels[i]);
                add_escaped(&b, labels[i + 1], 1);
                cm_buf_adds(&b, "\"");
        }
        return cm_buf_detach(&b, NULL);
}

cm_metrics_t *cm_metrics_new(const char *prefix)
{
        cm_metrics_t *mx = cm_calloc(1, sizeof(*mx));

        pthread_mutex_init(&mx->lock, NULL);
        mx->prefix = cm_strdup(prefix ? prefix : "");
        return mx;
}

void cm_metrics_destroy(cm_metrics_t *mx)
{
        cm_family_t *f, *fnext;
        cm_metric_t *m, *mnext;

        if (!mx)
                return;
        for (f = mx->first; f; f = fnext) {
                fnext = f->next;
                for (m = f->first; m; m = mnext) {
                        mnext = m->next;
                        free(m->labels);
                        free(m->buckets);
                        free(m);
                }
                free(f->name);
                free(f->help);
                free(f->bounds);
                free(f);
        }
        pthread_mutex_destroy(&mx->lock);
        free(mx->prefix);
        free(mx);
}

/* The family named name (prefixed), created if new. Called locked. */
static cm_family_t *family(cm_metrics_t *mx, const char *name, const char *help,
                           cm_metric_type_t type, const double *bounds,
                           size_t bound_cnt)
{
        cm_buf_t full = CM_BUF_INIT;
        cm_family_t *f;

        cm_buf_addf(&full, "%s%s%s", mx->prefix, *mx->prefix ? "_" : "", name);
        for (f = mx->first; f; f = f->next) {
                if (!strcmp(f->name, full.buf))
                        break;
        }
        if (f) {
                cm_buf_release(&full);
                if (f->type != type) {
                        fprintf(stderr, "metric '%s' registered as %s and %s\n",
                                f->name, type_names[f->type], type_names[type]);
                        abort();
                }
                return f;
        }
        f = cm_calloc(1, sizeof(*f));
        f->name = cm_buf_detach(&full, NULL);
        f->help = cm_strdup(help ? help : "");
        f->type = type;
        if (type == CM_HISTOGRAM) {
                f->bound_cnt = bound_cnt;
                f->bounds = cm_calloc(bound_cnt + 1, sizeof(*f->bounds));
                if (bound_cnt)
                        memcpy(f->bounds, bounds,
                               bound_cnt * sizeof(*f->bounds));
        }
        if (mx->last)
                mx->last->next = f;
        else
                mx->first = f;
        mx->last = f;
        return f;
}

static cm_metric_t *metric(cm_metrics_t *mx, const char *name, const char *help,
                           cm_metric_type_t type, const double *bounds,
                           size_t bound_cnt, const char *const *labels)
{
        char *l = render_labels(labels);
        cm_family_t *f;
        cm_metric_t *m;

        pthread_mutex_lock(&mx->lock);
        f = family(mx, name, help, type, bounds, bound_cnt);
        for (m = f->first; m; m = m->next) {
                if (!strcmp(m->labels, l))
                        break;
        }
        if (m) {
                free(l);
                goto out;
        }
        m = cm_calloc(1, sizeof(*m));
        m->fam = f;
        m->labels = l;
        atomic_init(&m->bits, to_bits(0));
        if (type == CM_HISTOGRAM) {
                size_t i;

                m->buckets = cm_calloc(f->bound_cnt + 1, sizeof(*m->buckets));
                for (i = 0; i <= f->bound_cnt; i++)
                        atomic_init(&m->buckets[i], 0);
        }
        if (f->last)
                f->last->next = m;
        else
                f->first = m;
        f->last = m;
out:
        pthread_mutex_unlock(&mx->lock);
        return m;
}

cm_metric_t *cm_metrics_counter(cm_metrics_t *mx, const char *name,
                                const char *help, const char *const *labels)
{
        return metric(mx, name, help, CM_COUNTER, NULL, 0, labels);
}

cm_metric_t *cm_metrics_gauge(cm_metrics_t *mx, const char *name,
                              const char *help, const char *const *labels)
{
        return metric(mx, name, help, CM_GAUGE, NULL, 0, labels);
}

cm_metric_t *cm_metrics_histogram(cm_metrics_t *mx, const char *name,
                                  const char *help, const double *bounds,
                                  size_t bound_cnt, const char *const *labels)
{
        return metric(mx, name, help, CM_HISTOGRAM, bounds, bound_cnt, labels);
}

void cm_metric_add(cm_metric_t *m, double v)
{
        if (m)
                atomic_add_double(&m->bits, v);
}

void cm_metric_inc(cm_metric_t *m)
{
        cm_metric_add(m, 1);
}

void cm_metric_set(cm_metric_t *m, double v)
{
        if (m)
                atomic_store_explicit(&m->bits, to_bits(v),
                                      memory_order_relaxed);
}

void cm_metric_observe(cm_metric_t *m, double v)
{
        size_t i;

        if (!m)
                return;
        for (i = 0; i < m->fam->bound_cnt && v > m->fam->bounds[i]; i++)
                ;
        atomic_add_double(&m->bits, v);
        atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
}

double cm_metric_value(const cm_metric_t *m)
{
        uint64_t n = 0;
        size_t i;

        if (m->fam->type != CM_HISTOGRAM)
                return from_bits(
                    atomic_load_explicit(&m->bits, memory_order_relaxed));
        for (i = 0; i <= m->fam->bound_cnt; i++)
                n += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        return (double)n;
}

/* name{labels} or name{labels,extra} (extra: "le=\"0.5\"", or NULL). */
static void add_series(cm_buf_t *b, const char *name, const char *suffix,
                       const char *labels, const char *extra)
{
        cm_buf_adds(b, name);
        cm_buf_adds(b, suffix);
        if (!*labels && !extra)
                return;
        cm_buf_adds(b, "{");
        cm_buf_adds(b, labels);
        if (extra)
                cm_buf_addf(b, "%s%s", *labels ? "," : "", extra);
        cm_buf_adds(b, "}");
}

static void render_histogram(cm_buf_t *b, const cm_family_t *f,
                             const cm_metric_t *m)
{
        cm_buf_t le = CM_BUF_INIT;
        uint64_t cum = 0;
        size_t i;

        for (i = 0; i <= f->bound_cnt; i++) {
                cum +=
                    atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
                cm_buf_reset(&le);
                cm_buf_adds(&le, "le=\"");
                add_value(&le, i < f->bound_cnt ? f->bounds[i] : INFINITY);
                cm_buf_adds(&le, "\"");
                add_series(b, f->name, "_bucket", m->labels, le.buf);
                cm_buf_addf(b, " %llu\n", (unsigned long long)cum);
        }
        add_series(b, f->name, "_sum", m->labels, NULL);
        cm_buf_adds(b, " ");
        add_value(
            b, from_bits(atomic_load_explicit(&m->bits, memory_order_relaxed)));
        cm_buf_adds(b, "\n");
        add_series(b, f->name, "_count", m->labels, NULL);
        cm_buf_addf(b, " %llu\n", (unsigned long long)cum);
        cm_buf_release(&le);
}

char *cm_metrics_render(cm_metrics_t *mx)
{
        cm_buf_t b = CM_BUF_INIT;
        const cm_family_t *f;
        const cm_metric_t *m;

        pthread_mutex_lock(&mx->lock);
        for (f = mx->first; f; f = f->next) {
                cm_buf_addf(&b, "# HELP %s ", f->name);
                add_escaped(&b, f->help, 0);
                cm_buf_addf(&b, "\n# TYPE %s %s\n", f->name,
                            type_names[f->type]);
                for (m = f->first; m; m = m->next) {
                        if (f->type == CM_HISTOGRAM) {
                                render_histogram(&b, f, m);
                                continue;
                        }
                        add_series(&b, f->name, "", m->labels, NULL);
                        cm_buf_adds(&b, " ");
                        add_value(&b, from_bits(atomic_load_explicit(
                                          &m->bits, memory_order_relaxed)));
                        cm_buf_adds(&b, "\n");
                }
        }
        pthread_mutex_unlock(&mx->lock);
        return cm_buf_detach(&b, NULL);
}
