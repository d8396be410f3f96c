/*
 * memory_data: LoCoMo's conversations as chatmem sessions (see memory.h).
 *
 * Each conversation is one session: speaker_a's turns are the user's,
 * speaker_b's the assistant's, each turn's content is "<Speaker>: <text>",
 * and its ts is the date of its LoCoMo session ("1:56 pm on 8 May, 2023",
 * read as UTC) plus one millisecond per turn before it in that session, so
 * that the order of the turns shows in their times too. Only `text` is
 * used: a turn's image caption (`blip_caption`, what a captioning model
 * saw in a photo the speaker shared) is not part of what was said, and the
 * data's README defines the history as the turn texts; captions are only
 * counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "context.h"
#include "json.h"
#include "memory.h"
#include "text.h"
#include "util.h"

const int em_budgets[EM_BUDGET_CNT] = {500, 1000, 2000};

char *em_norm(const char *s, size_t len)
{
        char *out = cm_malloc(len + 1);
        size_t i, n = 0;
        int gap = 0;

        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x80 && cm_isalnum(c)) {
                        if (gap && n > 0)
                                out[n++] = ' ';
                        out[n++] = (char)cm_tolower(c);
                        gap = 0;
                } else {
                        gap = 1;
                }
        }
        out[n] = '\0';
        return out;
}

uint32_t em_vocab_find(const em_vocab_t *v, const char *w, size_t len)
{
        size_t mask = v->map_cap - 1, i;

        if (v->map_cap == 0)
                return UINT32_MAX;
        for (i = cm_fnv1a(w, len) & mask; v->map[i]; i = (i + 1) & mask) {
                const char *x = v->words[v->map[i] - 1];

                if (strlen(x) == len && !memcmp(x, w, len))
                        return v->map[i] - 1;
        }
        return UINT32_MAX;
}

/* Places id in the open-addressing map of v (which has a free slot). */
static void vocab_place(em_vocab_t *v, uint32_t id)
{
        const char *w = v->words[id];
        size_t mask = v->map_cap - 1, i;

        for (i = cm_fnv1a(w, strlen(w)) & mask; v->map[i]; i = (i + 1) & mask)
                ;
        v->map[i] = id + 1;
}

/* The id of word w[0..len) in v, added when new. */
static uint32_t vocab_add(em_vocab_t *v, const char *w, size_t len)
{
        uint32_t id = em_vocab_find(v, w, len), k;

        if (id != UINT32_MAX)
                return id;
        if (2 * (v->cnt + 1) > v->map_cap) {
                free(v->map);
                v->map_cap = v->map_cap ? 2 * v->map_cap : 1024;
                v->map = cm_calloc(v->map_cap, sizeof(*v->map));
                for (k = 0; k < v->cnt; k++)
                        vocab_place(v, k);
        }
        v->words = cm_realloc(v->words, (v->cnt + 1) * sizeof(*v->words));
        v->df = cm_realloc(v->df, (v->cnt + 1) * sizeof(*v->df));
        v->words[v->cnt] = cm_strndup(w, len);
        v->df[v->cnt] = 0;
        id = (uint32_t)v->cnt++;
        vocab_place(v, id);
        return id;
}

static void vocab_release(em_vocab_t *v)
{
        size_t i;

        for (i = 0; i < v->cnt; i++)
                free(v->words[i]);
        free(v->words);
        free(v->df);
        free(v->map);
        memset(v, 0, sizeof(*v));
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

/* Fills t's BM25 terms from its content, counting document frequencies
 * in v. */
static void turn_terms(em_turn_t *t, em_vocab_t *v)
{
        char *norm = em_norm(t->msg.content, t->msg.content_len);
        uint32_t *ids = NULL;
        size_t cnt = 0, i, start = 0, len = strlen(norm);

        for (i = 0; i <= len; i++) {
                if (i < len && norm[i] != ' ')
                        continue;
                if (i > start) {
                        ids = cm_realloc(ids, (cnt + 1) * sizeof(*ids));
                        ids[cnt++] = vocab_add(v, norm + start, i - start);
                }
                start = i + 1;
        }
        t->word_cnt = cnt;
        if (cnt > 0)
                qsort(ids, cnt, sizeof(*ids), cmp_u32);
        t->term = cm_calloc(cnt ? cnt : 1, sizeof(*t->term));
        t->tf = cm_calloc(cnt ? cnt : 1, sizeof(*t->tf));
        for (i = 0; i < cnt; i++) {
                if (t->term_cnt > 0 && t->term[t->term_cnt - 1] == ids[i]) {
                        t->tf[t->term_cnt - 1]++;
                        continue;
                }
                t->term[t->term_cnt] = ids[i];
                t->tf[t->term_cnt++] = 1;
                v->df[ids[i]]++;
        }
        free(ids);
        free(norm);
}

/* "1:56 pm on 8 May, 2023" as ms since the epoch (UTC). Returns 0, or -1
 * when s does not read so. */
static int parse_date(const char *s, int64_t *ms)
{
        static const char *const months[12] = {
            "January",   "February", "March",    "April",
            "May",       "June",     "July",     "August",
            "September", "October",  "November", "December"};
        char ampm[3], month[16];
        int hour, min, day, year, mon, n = 0;
        struct tm tm;
        time_t t;

        if (sscanf(s, "%d:%d %2s on %d %15[A-Za-z], %d%n", &hour, &min, ampm,
                   &day, month, &year, &n) != 6 ||
            s[n] != '\0')
                return -1;
        for (mon = 0; mon < 12 && strcmp(months[mon], month); mon++)
                ;
        if (mon == 12 || hour < 1 || hour > 12 || min < 0 || min > 59 ||
            day < 1 || day > 31 || year < 1970)
                return -1;
        if (!strcmp(ampm, "am"))
                hour = hour == 12 ? 0 : hour;
        else if (!strcmp(ampm, "pm"))
                hour = hour == 12 ? 12 : hour + 12;
        else
                return -1;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = year - 1900;
        tm.tm_mon = mon;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -1;
        *ms = (int64_t)t * 1000;
        return 0;
}

/* The string member name of obj, or NULL. */
static const char *get_str(json_object *obj, const char *name)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, name, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;

        return x < y ? -1 : x > y;
}

/* The numbers n of the members "session_<n>" of conv, ascending, in a
 * heap array of *cnt. */
static int *session_numbers(json_object *conv, size_t *cnt)
{
        int *nums = NULL;

        *cnt = 0;
        json_object_object_foreach(conv, key, val)
        {
                long long n;

                (void)val;
                if (strncmp(key, "session_", 8) ||
                    cm_parse_int(key + 8, 1, 100000, &n) == -1)
                        continue;
                nums = cm_realloc(nums, (*cnt + 1) * sizeof(*nums));
                nums[(*cnt)++] = (int)n;
        }
        if (*cnt > 1)
                qsort(nums, *cnt, sizeof(*nums), cmp_int);
        return nums;
}

/* Appends one turn of a session to c. */
static int add_turn(em_convo_t *c, json_object *turn, const char *speaker_a,
                    const char *speaker_b, int64_t ts, const cm_tokenizer_t *tk,
                    const char *where, char *errstr, size_t errstr_size)
{
        const char *speaker = get_str(turn, "speaker");
        const char *text = get_str(turn, "text");
        em_turn_t *t;
        cm_buf_t b = CM_BUF_INIT;
        json_object *caption;

        if (!speaker || !text)
                return cm_errf(errstr, errstr_size,
                               "%s: a turn without 'speaker' or 'text'", where);
        c->turns = cm_realloc(c->turns, (c->turn_cnt + 1) * sizeof(*c->turns));
        t = &c->turns[c->turn_cnt];
        memset(t, 0, sizeof(*t));
        if (!strcmp(speaker, speaker_a))
                t->msg.role = CM_ROLE_USER;
        else if (!strcmp(speaker, speaker_b))
                t->msg.role = CM_ROLE_ASSISTANT;
        else
                return cm_errf(errstr, errstr_size,
                               "%s: speaker '%s' is neither '%s' nor '%s'",
                               where, speaker, speaker_a, speaker_b);
        if (json_object_object_get_ex(turn, "blip_caption", &caption))
                c->captions++;
        cm_buf_addf(&b, "%s: %s", speaker, text);
        t->msg.content = cm_buf_detach(&b, &t->msg.content_len);
        t->msg.ts = ts;
        t->line_tokens = cm_context_line_tokens(&t->msg, tk);
        t->break_tokens = cm_context_break_tokens(&t->msg, tk);
        t->msg.tokens = t->line_tokens;
        c->turn_cnt++;
        return 0;
}

static int convo_load(json_object *obj, size_t index, const char *user_prefix,
                      const cm_tokenizer_t *tk, em_convo_t *c, char *errstr,
                      size_t errstr_size)
{
        json_object *conv;
        const char *sample_id = get_str(obj, "sample_id");
        const char *speaker_a, *speaker_b;
        int *nums = NULL;
        size_t cnt = 0, i, k;
        char where[256], why[256];
        cm_buf_t hist = CM_BUF_INIT;
        double words = 0;
        int ret = -1;

        if (!sample_id) {
                cm_errf(errstr, errstr_size,
                        "conversation %zu: no string 'sample_id'", index);
                goto out;
        }
        c->sample_id = cm_strdup(sample_id);
        snprintf(c->conv_id, sizeof(c->conv_id), "%s", sample_id);
        snprintf(c->user_id, sizeof(c->user_id), "%s-%s", user_prefix,
                 sample_id);
        if (strlen(user_prefix) + 1 + strlen(sample_id) > CM_ID_MAX ||
            cm_id_check(c->user_id, strlen(c->user_id), 0, why, sizeof(why)) ==
                -1 ||
            cm_id_check(c->conv_id, strlen(c->conv_id), 0, why, sizeof(why)) ==
                -1) {
                cm_errf(errstr, errstr_size,
                        "'%s': not usable as a user or conversation id: %s",
                        sample_id, why);
                goto out;
        }
        if (!json_object_object_get_ex(obj, "conversation", &conv) ||
            !json_object_is_type(conv, json_type_object)) {
                cm_errf(errstr, errstr_size, "%s: no object 'conversation'",
                        sample_id);
                goto out;
        }
        speaker_a = get_str(conv, "speaker_a");
        speaker_b = get_str(conv, "speaker_b");
        if (!speaker_a || !speaker_b || !strcmp(speaker_a, speaker_b)) {
                cm_errf(errstr, errstr_size,
                        "%s: 'speaker_a' and 'speaker_b' must be two names",
                        sample_id);
                goto out;
        }
        nums = session_numbers(conv, &cnt);
        for (i = 0; i < cnt; i++) {
                char name[64];
                const char *date;
                json_object *turns = NULL;
                int64_t ts;

                snprintf(name, sizeof(name), "session_%d_date_time", nums[i]);
                date = get_str(conv, name);
                if (!date || parse_date(date, &ts) == -1) {
                        cm_errf(errstr, errstr_size,
                                "%s: '%s' is not a date like \"1:56 pm on 8 "
                                "May, 2023\"",
                                sample_id, name);
                        goto out;
                }
                snprintf(name, sizeof(name), "session_%d", nums[i]);
                if (!json_object_object_get_ex(conv, name, &turns) ||
                    !json_object_is_type(turns, json_type_array)) {
                        cm_errf(errstr, errstr_size, "%s: '%s' is not a list",
                                sample_id, name);
                        goto out;
                }
                for (k = 0; k < json_object_array_length(turns); k++) {
                        snprintf(where, sizeof(where), "%s %s[%zu]", sample_id,
                                 name, k);
                        if (add_turn(c, json_object_array_get_idx(turns, k),
                                     speaker_a, speaker_b, ts + (int64_t)k, tk,
                                     where, errstr, errstr_size) == -1)
                                goto out;
                }
                c->sessions++;
        }
        if (c->turn_cnt == 0) {
                cm_errf(errstr, errstr_size, "%s: no turns", sample_id);
                goto out;
        }
        for (i = 0; i < c->turn_cnt; i++) {
                em_turn_t *t = &c->turns[i];
                char *norm = em_norm(t->msg.content, t->msg.content_len);

                if (hist.len > 0 && norm[0])
                        cm_buf_adds(&hist, " ");
                cm_buf_adds(&hist, norm);
                free(norm);
                turn_terms(t, &c->vocab);
                words += (double)t->word_cnt;
                c->history_tokens += t->line_tokens;
        }
        /* The newest line of the text has no line break. */
        c->history_tokens -= c->turns[c->turn_cnt - 1].break_tokens;
        c->avg_words = words / (double)c->turn_cnt;
        c->history_norm = cm_buf_detach(&hist, NULL);
        ret = 0;
out:
        cm_buf_release(&hist);
        free(nums);
        return ret;
}

static void convo_release(em_convo_t *c)
{
        size_t i;

        for (i = 0; i < c->turn_cnt; i++) {
                cm_message_release(&c->turns[i].msg);
                free(c->turns[i].term);
                free(c->turns[i].tf);
        }
        free(c->turns);
        free(c->sample_id);
        free(c->history_norm);
        vocab_release(&c->vocab);
        memset(c, 0, sizeof(*c));
}

/* Adds the questions of conversation ci that are kept. */
static int questions_load(em_data_t *d, json_object *obj, size_t ci,
                          char *errstr, size_t errstr_size)
{
        const em_convo_t *c = &d->convos[ci];
        json_object *qa;
        size_t i;

        if (!json_object_object_get_ex(obj, "qa", &qa) ||
            !json_object_is_type(qa, json_type_array))
                return cm_errf(errstr, errstr_size, "%s: no list 'qa'",
                               c->sample_id);
        for (i = 0; i < json_object_array_length(qa); i++) {
                json_object *e = json_object_array_get_idx(qa, i), *v;
                const char *question = get_str(e, "question");
                em_question_t *q;
                char *norm;
                int category;

                d->qa_cnt++;
                if (!json_object_object_get_ex(e, "category", &v) ||
                    !json_object_is_type(v, json_type_int) || !question)
                        return cm_errf(errstr, errstr_size,
                                       "%s qa[%zu]: no integer 'category' or "
                                       "no string 'question'",
                                       c->sample_id, i);
                category = json_object_get_int(v);
                if (category == 5) {
                        d->qa_adversarial++;
                        continue;
                }
                /* An answer may be a number: its JSON text then. */
                if (!json_object_object_get_ex(e, "answer", &v) ||
                    (!json_object_is_type(v, json_type_string) &&
                     !json_object_is_type(v, json_type_int) &&
                     !json_object_is_type(v, json_type_double))) {
                        d->qa_absent++;
                        continue;
                }
                norm = em_norm(json_object_get_string(v),
                               strlen(json_object_get_string(v)));
                if (!norm[0] || !strstr(c->history_norm, norm)) {
                        free(norm);
                        d->qa_absent++;
                        continue;
                }
                d->qs = cm_realloc(d->qs, (d->q_cnt + 1) * sizeof(*d->qs));
                q = &d->qs[d->q_cnt++];
                q->convo = ci;
                q->qa_index = i;
                q->category = category;
                q->question = cm_strdup(question);
                q->answer = cm_strdup(json_object_get_string(v));
                q->answer_norm = norm; /* now owned by q */
        }
        return 0;
}

/* Whether id is one of the comma-separated ids of list. */
static int listed(const char *list, const char *id)
{
        size_t n;

        if (!id)
                return 0;
        n = strlen(id);
        while (*list) {
                size_t k = strcspn(list, ",");

                if (k == n && !strncmp(list, id, n))
                        return 1;
                list += k + (list[k] == ',');
        }
        return 0;
}

int em_data_load(const char *path, const char *user_prefix, const char *only,
                 const cm_tokenizer_t *tk, em_data_t *d, char *errstr,
                 size_t errstr_size)
{
        FILE *f = NULL;
        json_object *root = NULL;
        cm_buf_t b = CM_BUF_INIT;
        char chunk[65536], why[512];
        size_t n, i;
        int ret = -1;

        memset(d, 0, sizeof(*d));
        f = fopen(path, "rb");
        if (!f) {
                cm_errf(errstr, errstr_size, "cannot open '%s'", path);
                goto out;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                cm_buf_add(&b, chunk, n);
        if (ferror(f)) {
                cm_errf(errstr, errstr_size, "cannot read '%s'", path);
                goto out;
        }
        root = cm_json_parse_array(b.buf, b.len, why, sizeof(why));
        if (!root) {
                cm_errf(errstr, errstr_size, "'%s': %s", path, why);
                goto out;
        }
        n = json_object_array_length(root);
        d->convos = cm_calloc(n ? n : 1, sizeof(*d->convos));
        for (i = 0; i < n; i++) {
                json_object *obj = json_object_array_get_idx(root, i);
                size_t ci = d->convo_cnt;

                if (!json_object_is_type(obj, json_type_object)) {
                        cm_errf(errstr, errstr_size,
                                "'%s': item %zu is not an object", path, i);
                        goto out;
                }
                if (only && !listed(only, get_str(obj, "sample_id")))
                        continue;
                d->convo_cnt++;
                if (convo_load(obj, i, user_prefix, tk, &d->convos[ci], errstr,
                               errstr_size) == -1 ||
                    questions_load(d, obj, ci, errstr, errstr_size) == -1)
                        goto out;
                d->turn_cnt += d->convos[ci].turn_cnt;
        }
        if (d->convo_cnt == 0) {
                cm_errf(errstr, errstr_size, "'%s': no conversations%s", path,
                        only ? " of those asked for" : "");
                goto out;
        }
        ret = 0;
out:
        if (ret == -1)
                em_data_release(d);
        if (root)
                json_object_put(root);
        if (f)
                fclose(f);
        cm_buf_release(&b);
        return ret;
}

void em_data_release(em_data_t *d)
{
        size_t i;

        for (i = 0; i < d->convo_cnt; i++)
                convo_release(&d->convos[i]);
        free(d->convos);
        for (i = 0; i < d->q_cnt; i++) {
                free(d->qs[i].question);
                free(d->qs[i].answer);
                free(d->qs[i].answer_norm);
        }
        free(d->qs);
        memset(d, 0, sizeof(*d));
}
