/*
 * metrics: a registry of counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * One registry per process, with the prefix of its metric names
 * ("chatmem_ingest": names are chatmem_<worker>_<what>_<unit>, counters
 * ending in _total). A metric is registered once, at start-up or the first
 * time a label value shows up, and then only written to.
 *
 * Thread safety: values are C11 atomics, so the worker thread writes them
 * without a lock while the HTTP thread renders. Registration and rendering
 * take the registry's mutex. A rendered histogram may lag its last
 * observation by one bucket count, never more: its _count is the sum of its
 * buckets, so that the +Inf bucket and _count always agree.
 *
 * Labels: up to CM_METRICS_LABELS_MAX pairs per metric, given as a
 * NULL-terminated array {"name", "value", ..., NULL}; values are escaped
 * (\\, \", \n) when rendered. Metrics of one name form a family: one # HELP
 * and one # TYPE, then each labelled child in registration order.
 */
#ifndef CM_METRICS_H
#define CM_METRICS_H

#include <stddef.h>

typedef struct cm_metrics cm_metrics_t;
typedef struct cm_metric cm_metric_t;

#define CM_METRICS_LABELS_MAX 4

/* Buckets of latencies, in seconds, from 0.5 ms to 10 s. */
extern const double cm_metrics_latency_buckets[];
extern const size_t cm_metrics_latency_bucket_cnt;

/* A new registry whose metric names start with prefix and '_' (prefix ""
 * or NULL: none). Free with cm_metrics_destroy(). Cannot fail. */
cm_metrics_t *cm_metrics_new(const char *prefix);

/* Frees the registry and every metric of it; mx may be NULL. No thread
 * may use it or its metrics any more. */
void cm_metrics_destroy(cm_metrics_t *mx);

/*
 * Registers a counter (only goes up), a gauge (any value) or a histogram
 * with the given upper bounds (seconds, ascending; +Inf is implicit) named
 * prefix_name, with the labels (NULL: none). Registering the same name and
 * labels again returns the same metric (help, type and bounds of the first
 * registration stay). The metric lives as long as mx. Cannot fail; a name
 * already registered with another type aborts (a programming error).
 */
cm_metric_t *cm_metrics_counter(cm_metrics_t *mx, const char *name,
                                const char *help, const char *const *labels);
cm_metric_t *cm_metrics_gauge(cm_metrics_t *mx, const char *name,
                              const char *help, const char *const *labels);
cm_metric_t *cm_metrics_histogram(cm_metrics_t *mx, const char *name,
                                  const char *help, const double *bounds,
                                  size_t bound_cnt, const char *const *labels);

/* Adds v to a counter (v >= 0) or a gauge. m may be NULL (nothing). Cannot
 * fail. */
void cm_metric_add(cm_metric_t *m, double v);
/* Adds 1. */
void cm_metric_inc(cm_metric_t *m);
/* Sets a gauge to v. m may be NULL. */
void cm_metric_set(cm_metric_t *m, double v);
/* Records one observation v (seconds) in a histogram. m may be NULL. */
void cm_metric_observe(cm_metric_t *m, double v);
/* The value of a counter or gauge, or the observation count of a
 * histogram (tests, logs). */
double cm_metric_value(const cm_metric_t *m);

/* Renders every metric in the text format 0.0.4. Returns a heap string
 * the caller frees. Cannot fail. */
char *cm_metrics_render(cm_metrics_t *mx);

#endif
