/*
 * modsec_eval: run HTTP requests through libmodsecurity (v3) + a rules file, one
 * transaction per request, and print the verdict, the CRS inbound anomaly score and the
 * CPU time spent in libmodsecurity.
 *
 * Usage: modsec_eval [-c RULES.conf]... [-n] [-v] < requests.tsv > results.tsv
 *   -c FILE  rules/config file to load (repeatable, loaded in order; at least one is
 *            required, normally extproc_lab/bench/modsec/modsec.conf)
 *   -n       do not run the logging phase (phase 5, CRS 980xxx correlation rules)
 *   -v       print every log-callback message on stderr (debugging)
 *
 * Input: one request per line, TAB-separated fields, every field base64 (standard
 * alphabet, padding optional; an empty field is the empty string):
 *   id  method  uri  http_version  body  [header_name  header_value]...
 * Lines may be arbitrarily long. Bytes are passed through unchanged (NUL, CR, LF, 8-bit),
 * except that a NUL byte in the URI (which the C API takes as a C string) is sent as %00.
 *
 * Output: one line per input line, TAB-separated:
 *   id  status  blocked  score  cpu_ns  rule_ids  detail
 *   status   intervention status (200 when there was no disruptive intervention)
 *   blocked  1 if libmodsecurity returned a disruptive intervention, else 0
 *   score    inbound anomaly score (sum of tx.anomaly_score_pl1..4) as seen by the probe
 *            rule 9999100 right before REQUEST-949 (or from 949110's message); -1 unknown
 *   cpu_ns   CLOCK_THREAD_CPUTIME_ID nanoseconds from msc_new_transaction to
 *            msc_transaction_cleanup inclusive (includes the log callback)
 *   rule_ids comma-separated ids of rules that logged a match, in order of first match,
 *            ending with the disruptive rule (e.g. 949110, or 200002 for a body that
 *            failed to parse) when blocked; probe 9999100 excluded; "-" if none.
 *            Note: libmodsecurity 3.0.9 does not pass messages of rules with
 *            `noauditlog` to the log callback, so CRS 980130 (phase 5) never shows here.
 *   detail   per-category scores from the probe ("sqli=5;xss=0;...") or "-"
 *   A line that cannot be decoded gives status -1 and detail "bad-input".
 * A summary line "# loaded N rules in X ms" is printed on stderr at start.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <modsecurity/intervention.h>

#define MAX_RULES 128
#define PROBE_ID 9999100L

typedef struct {
    long ids[MAX_RULES];
    int n_ids;
    int score;          /* from probe, -1 if not seen */
    int score_949;      /* from 949110 message, -1 if not seen */
    char detail[512];
    int verbose;
} req_state;

/* ---------------------------------------------------------------- base64 */
static signed char b64_tab[256];

static void b64_init(void) {
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_tab, -1, sizeof b64_tab);
    for (int i = 0; i < 64; i++) b64_tab[(unsigned char)a[i]] = (signed char)i;
    b64_tab['-'] = 62; b64_tab['_'] = 63;  /* accept urlsafe too */
}

/* Decode in place-safe manner into out (capacity >= len*3/4+3). Returns length or -1. */
static long b64_decode(const char *in, size_t len, unsigned char *out) {
    unsigned int acc = 0;
    int bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=') break;
        if (c == '\r' || c == ' ') continue;
        int v = b64_tab[c];
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    return n;
}

/* ---------------------------------------------------------------- log callback */
static long parse_long_after(const char *s, const char *key) {
    const char *p = strstr(s, key);
    if (!p) return -1;
    p += strlen(key);
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) return 0;  /* empty expansion: unset variable */
    return v;
}

static void log_cb(void *data, const void *msg) {
    req_state *st = (req_state *)data;
    const char *s = (const char *)msg;
    if (!st || !s) return;
    if (st->verbose) fprintf(stderr, "LOG: %s\n", s);
    const char *p = strstr(s, "[id \"");
    if (!p) return;
    long id = strtol(p + 5, NULL, 10);
    if (id == PROBE_ID) {
        long pl1 = parse_long_after(s, "BENCH_SCORE pl1=");
        long pl2 = parse_long_after(s, ";pl2=");
        long pl3 = parse_long_after(s, ";pl3=");
        long pl4 = parse_long_after(s, ";pl4=");
        st->score = (int)((pl1 > 0 ? pl1 : 0) + (pl2 > 0 ? pl2 : 0) + (pl3 > 0 ? pl3 : 0) +
                          (pl4 > 0 ? pl4 : 0));
        const char *d = strstr(s, ";sqli=");
        if (d) {
            d += 1;
            size_t k = 0;
            while (d[k] && d[k] != '\'' && d[k] != '"' && d[k] != ']' && k < sizeof st->detail - 1) {
                char c = d[k];
                st->detail[k] = (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
                k++;
            }
            st->detail[k] = 0;
        }
        return;
    }
    if (id == 949110) {
        long sc = parse_long_after(s, "(Total Score: ");
        if (sc >= 0) st->score_949 = (int)sc;
    }
    for (int i = 0; i < st->n_ids; i++)
        if (st->ids[i] == id) return;
    if (st->n_ids < MAX_RULES) st->ids[st->n_ids++] = id;
}

/* ---------------------------------------------------------------- helpers */
static long long thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Print bytes with TAB/CR/LF replaced so the output stays one TSV line. */
static void print_clean(const unsigned char *s, long n) {
    for (long i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '\t' || c == '\n' || c == '\r' || c == 0) c = ' ';
        putchar(c);
    }
}

/* Returns 1 if the intervention is disruptive; fills *status; frees the strings. */
static int g_verbose = 0;

/* Returns 1 if the intervention is disruptive; fills *status; records the disruptive
 * rule id (its message goes to the intervention log, not to the log callback). */
static int check_intervention(Transaction *tx, int *status, req_state *st) {
    ModSecurityIntervention it;
    memset(&it, 0, sizeof it);
    it.status = 200;
    int r = msc_intervention(tx, &it);
    if (g_verbose && r)
        fprintf(stderr, "INTERVENTION status=%d disruptive=%d log=%s\n", it.status, it.disruptive,
                it.log ? it.log : "(null)");
    if (r && it.log) {
        int v = st->verbose;
        st->verbose = 0;  /* already printed above */
        log_cb(st, it.log);
        st->verbose = v;
    }
    if (it.url) free(it.url);
    if (it.log) free(it.log);
    if (r && it.disruptive) {
        *status = it.status;
        return 1;
    }
    return 0;
}

#define MAX_FIELDS 4096

int main(int argc, char **argv) {
    const char *confs[64];
    int n_confs = 0, no_logging = 0, verbose = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:nvh")) != -1) {
        switch (opt) {
        case 'c':
            if (n_confs < 64) confs[n_confs++] = optarg;
            break;
        case 'n': no_logging = 1; break;
        case 'v': verbose = 1; g_verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s -c RULES.conf [-c MORE.conf]... [-n] [-v] < in.tsv\n", argv[0]);
            return 2;
        }
    }
    if (n_confs == 0) {
        fprintf(stderr, "modsec_eval: at least one -c RULES.conf is required\n");
        return 2;
    }
    b64_init();

    double t0 = wall_ms();
    ModSecurity *ms = msc_init();
    msc_set_connector_info(ms, "bench-modsec-eval/1.0");
    msc_set_log_cb(ms, log_cb);
    RulesSet *rules = msc_create_rules_set();
    int total_rules = 0;
    for (int i = 0; i < n_confs; i++) {
        const char *err = NULL;
        int r = msc_rules_add_file(rules, confs[i], &err);
        if (r < 0) {
            fprintf(stderr, "modsec_eval: cannot load %s: %s\n", confs[i], err ? err : "?");
            return 3;
        }
        total_rules += r;
    }
    fprintf(stderr, "# %s\n# loaded %d rules in %.0f ms\n", msc_who_am_i(ms), total_rules, wall_ms() - t0);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned char *buf = NULL;  /* decoded fields, concatenated */
    size_t buf_cap = 0;
    char *fstart[MAX_FIELDS];
    size_t flen[MAX_FIELDS];
    unsigned char *dec[MAX_FIELDS];
    long dlen[MAX_FIELDS];
    req_state st;

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    while ((len = getline(&line, &cap, stdin)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        /* split on TAB */
        int nf = 0;
        char *p = line;
        fstart[nf] = p;
        for (ssize_t i = 0; i < len; i++) {
            if (line[i] == '\t') {
                flen[nf] = (size_t)(&line[i] - fstart[nf]);
                if (nf + 1 >= MAX_FIELDS) { nf = MAX_FIELDS; break; }
                fstart[++nf] = &line[i + 1];
            }
        }
        int bad = 0;
        if (nf >= MAX_FIELDS) bad = 1;
        else { flen[nf] = (size_t)(line + len - fstart[nf]); nf++; }
        if (!bad && (nf < 5 || ((nf - 5) % 2) != 0)) bad = 1;
        /* decode all fields */
        if (!bad) {
            size_t need = 0;
            for (int i = 0; i < nf; i++) need += flen[i] / 4 * 3 + 4 + 1;
            need += 3 * 64;  /* room to escape NULs in the URI */
            if (need > buf_cap) {
                buf_cap = need * 2;
                free(buf);
                buf = malloc(buf_cap);
                if (!buf) { fprintf(stderr, "modsec_eval: out of memory\n"); return 4; }
            }
            unsigned char *q = buf;
            for (int i = 0; i < nf && !bad; i++) {
                long n = b64_decode(fstart[i], flen[i], q);
                if (n < 0) { bad = 1; break; }
                dec[i] = q;
                dlen[i] = n;
                q[n] = 0;
                q += n + 1;
            }
        }
        if (bad) {
            /* echo the raw first field as id */
            fputs("?\t-1\t0\t-1\t0\t-\tbad-input\n", stdout);
            fflush(stdout);
            continue;
        }

        /* URI: the C API takes a C string; escape embedded NULs as %00. */
        char *uri = (char *)dec[2];
        char *uri_alloc = NULL;
        if ((long)strlen(uri) != dlen[2]) {
            uri_alloc = malloc((size_t)dlen[2] * 3 + 1);
            if (!uri_alloc) return 4;
            long k = 0;
            for (long i = 0; i < dlen[2]; i++) {
                if (dec[2][i] == 0) { memcpy(uri_alloc + k, "%00", 3); k += 3; }
                else uri_alloc[k++] = (char)dec[2][i];
            }
            uri_alloc[k] = 0;
            uri = uri_alloc;
        }
        const char *method = dlen[1] ? (const char *)dec[1] : "GET";
        const char *version = dlen[3] ? (const char *)dec[3] : "1.1";

        memset(&st, 0, sizeof st);
        st.score = -1;
        st.score_949 = -1;
        st.verbose = verbose;
        int status = 200, blocked = 0;

        long long c0 = thread_cpu_ns();
        Transaction *tx = msc_new_transaction(ms, rules, &st);
        msc_process_connection(tx, "192.0.2.10", 40000, "192.0.2.1", 80);
        msc_process_uri(tx, uri, method, version);
        blocked = check_intervention(tx, &status, &st);
        if (!blocked) {
            for (int i = 5; i + 1 < nf; i += 2)
                msc_add_n_request_header(tx, dec[i], (size_t)dlen[i], dec[i + 1], (size_t)dlen[i + 1]);
            msc_process_request_headers(tx);
            blocked = check_intervention(tx, &status, &st);
        }
        if (!blocked) {
            if (dlen[4] > 0) msc_append_request_body(tx, dec[4], (size_t)dlen[4]);
            msc_process_request_body(tx);
            blocked = check_intervention(tx, &status, &st);
        }
        if (!no_logging) msc_process_logging(tx);
        msc_transaction_cleanup(tx);
        long long c1 = thread_cpu_ns();
        free(uri_alloc);

        int score = st.score;
        if (score < 0 && st.score_949 >= 0) score = st.score_949;
        if (st.score_949 >= 0 && st.score_949 > score) score = st.score_949;

        print_clean(dec[0], dlen[0]);
        printf("\t%d\t%d\t%d\t%lld\t", blocked ? status : 200, blocked, score, c1 - c0);
        if (st.n_ids == 0) putchar('-');
        for (int i = 0; i < st.n_ids; i++) printf(i ? ",%ld" : "%ld", st.ids[i]);
        putchar('\t');
        fputs(st.detail[0] ? st.detail : "-", stdout);
        putchar('\n');
        /* flush per request so a driver can attribute a crash to the right record */
        fflush(stdout);
    }
    free(line);
    free(buf);
    msc_rules_cleanup(rules);
    msc_cleanup(ms);
    return 0;
}
