/*
 * echo_load.c - closed-loop load generator for the aioecho line protocol.
 *
 * Opens CONNECTIONS connections and sends one request on each: a connection
 * counts as connected once that first reply is verified, so that a server
 * which leaves connections waiting in its accept queue fails instead of
 * being measured on the ones it serves.  Then keeps PIPELINE requests in
 * flight on each: a request is SIZE bytes (lowercase letters, then '\n') and
 * its reply must be exactly the upper-cased letters + "_SB\n".  Each
 * verified reply immediately releases the next request.  Replies completed during DURATION
 * seconds, after WARMUP seconds of unmeasured traffic, are reported as one
 * JSON line on stdout, with their latency percentiles (from a request's last
 * byte written to its reply's last byte read), the window's bounds on
 * CLOCK_MONOTONIC (so that a caller can read a server's CPU time over exactly
 * that window) and the CPU time this client used in it.  Single-threaded
 * epoll, so the generator costs one core and leaves the rest of the machine
 * to the server under test.
 *
 * usage: echo_load [-h HOST] [-p PORT] [-c CONNECTIONS] [-d DURATION_S]
 *                  [-s SIZE] [-k PIPELINE] [-w WARMUP_S]
 *
 * Exits 1 if any reply mismatched, any connection failed (a connect and its
 * first reply must take under 5 s), or nothing was measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 5.0
#define MAX_EVENTS 512
#define READ_CHUNK (64 * 1024)
#define IOV_BATCH 64
/* Requests rotate through this many distinct bodies (one per starting
 * letter), so a reply delivered out of order or to the wrong connection
 * fails verification instead of passing by coincidence. */
#define VARIANTS 26
#define SUFFIX "_SB"
#define SUFFIX_LEN (sizeof SUFFIX - 1)
#define MAX_REPORTS 10 /* failures described on stderr before going quiet */
/* Latency histogram: exact below 2^SUB_BITS ns, then 2^(SUB_BITS-1) buckets
 * per power of two (a relative resolution of 0.2%) up to 2^MAX_EXP ns
 * (137 s); longer round trips land in the last bucket. */
#define SUB_BITS 10
#define SUB_HALF (1u << (SUB_BITS - 1))
#define MAX_EXP 37
#define BUCKETS ((1u << SUB_BITS) + (MAX_EXP - SUB_BITS) * SUB_HALF)

/* PRIMING: connected, waiting for the reply to the first request. */
enum conn_state { CONNECTING, PRIMING, CONNECTED, RUNNING, CLOSED };

struct conn {
    int fd;
    enum conn_state state;
    bool want_out;       /* EPOLLOUT registered: the socket refused part of a request */
    double connect_start;
    uint64_t sent;       /* requests written completely */
    size_t send_pos;     /* bytes of request `sent` already written */
    uint64_t received;   /* replies verified completely */
    size_t recv_pos;     /* bytes of reply `received` verified so far */
    int64_t *sent_ns;    /* when each request in flight was written, by number % pipeline */
};

enum phase { PHASE_CONNECT, PHASE_WARMUP, PHASE_MEASURE };

static int epfd;
static struct conn *conns;
static long nconns;
static size_t req_len, rep_len;
static uint64_t pipeline;
static char *requests; /* VARIANTS requests of req_len bytes, back to back */
static char *replies;  /* the matching VARIANTS replies of rep_len bytes */
static char rbuf[READ_CHUNK];

static enum phase phase = PHASE_CONNECT;
static long pending_connects, connected, alive;
static uint64_t messages, mismatches, errors;
static int reports;
static uint64_t histogram[BUCKETS];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static unsigned bucket_of(uint64_t ns)
{
    if (ns < (1u << SUB_BITS))
        return (unsigned)ns;
    unsigned exp = 63u - (unsigned)__builtin_clzll(ns); /* ns >= 2^exp, exp >= SUB_BITS */
    if (exp >= MAX_EXP)
        return BUCKETS - 1;
    unsigned shift = exp - (SUB_BITS - 1);
    return (1u << SUB_BITS) + (exp - SUB_BITS) * SUB_HALF + (unsigned)(ns >> shift) - SUB_HALF;
}

/* The middle of a bucket, in nanoseconds. */
static double bucket_value(unsigned b)
{
    if (b < (1u << SUB_BITS))
        return b;
    unsigned exp = SUB_BITS + (b - (1u << SUB_BITS)) / SUB_HALF;
    unsigned shift = exp - (SUB_BITS - 1);
    uint64_t low = ((uint64_t)(b - (1u << SUB_BITS)) % SUB_HALF + SUB_HALF) << shift;
    return (double)low + (double)(1ull << shift) / 2;
}

/* The latency below which `share` of the measured round trips completed, in us. */
static double percentile_us(double share)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < BUCKETS; b++)
        total += histogram[b];
    if (total == 0)
        return 0;
    double exact = share * (double)total;
    uint64_t rank = (uint64_t)exact, seen = 0; /* rounded up, at least 1 */
    if ((double)rank < exact || rank == 0)
        rank++;
    for (unsigned b = 0; b < BUCKETS; b++) {
        seen += histogram[b];
        if (seen >= rank)
            return bucket_value(b) / 1000;
    }
    return bucket_value(BUCKETS - 1) / 1000;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void report(const char *fmt, ...)
{
    if (reports > MAX_REPORTS)
        return;
    if (reports++ == MAX_REPORTS) {
        fprintf(stderr, "echo_load: further failures not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "echo_load: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static long conn_index(const struct conn *c)
{
    return (long)(c - conns);
}

/* Message m of connection i starts at letter (i + m) % 26. */
static size_t variant(const struct conn *c, uint64_t m)
{
    return (size_t)(((uint64_t)conn_index(c) + m) % VARIANTS);
}

static void close_conn(struct conn *c)
{
    if (c->state == CONNECTING || c->state == PRIMING)
        pending_connects--;
    else
        alive--;
    close(c->fd);
    c->fd = -1;
    c->state = CLOSED;
}

static void fail(struct conn *c, const char *what, int err)
{
    errors++;
    report("connection %ld: %s: %s", conn_index(c), what, err ? strerror(err) : "closed by peer");
    close_conn(c);
}

static void set_interest(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Writes requests until PIPELINE are outstanding or the socket is full. */
static void pump_send(struct conn *c)
{
    uint64_t limit = c->received + (c->state == RUNNING ? pipeline : 1);
    while (c->sent < limit) {
        struct iovec iov[IOV_BATCH];
        size_t cnt = 0, pos = c->send_pos;
        for (uint64_t m = c->sent; m < limit && cnt < IOV_BATCH; m++, cnt++) {
            iov[cnt].iov_base = requests + variant(c, m) * req_len + pos;
            iov[cnt].iov_len = req_len - pos;
            pos = 0;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fail(c, "send", errno);
                return;
            }
            break;
        }
        size_t done = c->send_pos + (size_t)n;
        uint64_t written = c->sent + done / req_len;
        if (written > c->sent) {
            int64_t t = now_ns();
            for (uint64_t m = c->sent; m < written; m++)
                c->sent_ns[m % pipeline] = t;
        }
        c->sent = written;
        c->send_pos = done % req_len;
    }
    bool want_out = c->sent < limit;
    if (want_out != c->want_out) {
        set_interest(c, EPOLLIN | (want_out ? EPOLLOUT : 0));
        c->want_out = want_out;
    }
}

static void mismatch(struct conn *c, const char *why)
{
    mismatches++;
    report("connection %ld: reply %llu, byte %zu: %s", conn_index(c),
           (unsigned long long)c->received, c->recv_pos, why);
    close_conn(c); /* the stream is out of step; nothing after this can be trusted */
}

/* Verifies whatever reply bytes arrived, then refills the pipeline. */
static void on_readable(struct conn *c)
{
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        fail(c, "recv", n < 0 ? errno : 0);
        return;
    }
    const char *p = rbuf;
    size_t left = (size_t)n;
    int64_t arrived = phase == PHASE_MEASURE ? now_ns() : 0;
    while (left > 0) {
        if (c->received >= c->sent) {
            mismatch(c, "data with no complete request outstanding");
            return;
        }
        size_t chunk = rep_len - c->recv_pos;
        if (chunk > left)
            chunk = left;
        const char *want = replies + variant(c, c->received) * rep_len + c->recv_pos;
        if (memcmp(p, want, chunk) != 0) {
            while (*p == *want) { /* point the report at the first wrong byte */
                p++;
                want++;
                c->recv_pos++;
            }
            mismatch(c, "reply differs from the expected one");
            return;
        }
        p += chunk;
        left -= chunk;
        c->recv_pos += chunk;
        if (c->recv_pos == rep_len) {
            if (phase == PHASE_MEASURE) {
                messages++;
                histogram[bucket_of((uint64_t)(arrived - c->sent_ns[c->received % pipeline]))]++;
            }
            c->recv_pos = 0;
            c->received++;
        }
    }
    if (c->state == PRIMING) {
        /* The first reply came: idle until every connection is settled. */
        set_interest(c, 0);
        c->state = CONNECTED;
        pending_connects--;
        connected++;
        alive++;
        return;
    }
    pump_send(c);
}

static void on_connect_event(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        fail(c, "connect", err);
        return;
    }
    c->state = PRIMING;
    set_interest(c, EPOLLIN);
    pump_send(c);
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == CONNECTING) {
        on_connect_event(c);
        return;
    }
    /* recv reports both hang-ups and socket errors, with the reason. */
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
        if (c->state == CLOSED)
            return;
    }
    if ((events & EPOLLOUT) && (c->state == RUNNING || c->state == PRIMING))
        pump_send(c);
}

static void start_connect(struct conn *c, const struct addrinfo *ai)
{
    c->connect_start = now_s();
    c->state = CONNECTING;
    pending_connects++;
    c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   ai->ai_protocol);
    if (c->fd < 0) {
        /* Nothing to close, so account for it here rather than via fail(). */
        errors++;
        report("connection %ld: socket: %s", conn_index(c), strerror(errno));
        pending_connects--;
        c->state = CLOSED;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
        fail(c, "connect", errno);
    /* An immediate success still reports EPOLLOUT, so it needs no special case. */
}

/* Fails connections still connecting after CONNECT_TIMEOUT_S; returns the
 * earliest deadline among those left (INFINITY if none). */
static double expire_connects(double now)
{
    double next = INFINITY;
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->state != CONNECTING && c->state != PRIMING)
            continue;
        double deadline = c->connect_start + CONNECT_TIMEOUT_S;
        if (now >= deadline)
            fail(c, c->state == CONNECTING ? "connect" : "first reply", ETIMEDOUT);
        else if (deadline < next)
            next = deadline;
    }
    return next;
}

static void start_traffic(void)
{
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->state != CONNECTED)
            continue;
        c->state = RUNNING;
        set_interest(c, EPOLLIN);
        pump_send(c);
    }
}

static void build_messages(void)
{
    requests = malloc(VARIANTS * req_len);
    replies = malloc(VARIANTS * rep_len);
    if (!requests || !replies)
        die("malloc");
    for (size_t v = 0; v < VARIANTS; v++) {
        char *rq = requests + v * req_len;
        char *rp = replies + v * rep_len;
        size_t body = req_len - 1;
        for (size_t i = 0; i < body; i++) {
            rq[i] = (char)('a' + (v + i) % 26);
            rp[i] = (char)('A' + (v + i) % 26);
        }
        rq[body] = '\n';
        memcpy(rp + body, SUFFIX "\n", SUFFIX_LEN + 1);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_load [-h HOST] [-p PORT] [-c CONNECTIONS] [-d DURATION_S]\n"
            "                 [-s SIZE] [-k PIPELINE] [-w WARMUP_S]\n");
    exit(2);
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < min || v > max)
        usage();
    return v;
}

static double parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= 0 && v < 1e6))
        usage();
    return v;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "8089";
    double duration = 10, warmup = 1;
    nconns = 1000;
    req_len = 64;
    pipeline = 1;

    int opt;
    while ((opt = getopt(argc, argv, "h:p:c:d:s:k:w:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': parse_long(optarg, 1, 65535); port = optarg; break;
        case 'c': nconns = parse_long(optarg, 1, 1000000); break;
        case 'd': duration = parse_seconds(optarg); break;
        case 's': req_len = (size_t)parse_long(optarg, 1, 64L << 20); break;
        case 'k': pipeline = (uint64_t)parse_long(optarg, 1, 1 << 20); break;
        case 'w': warmup = parse_seconds(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || duration <= 0)
        usage();
    rep_len = req_len + SUFFIX_LEN;

    /* One descriptor per connection; the soft limit is often only 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo_load: %s:%s: %s\n", host, port, gai_strerror(rc));
        return 1;
    }

    build_messages();
    conns = calloc((size_t)nconns, sizeof *conns);
    int64_t *sent_ns = calloc((size_t)nconns * pipeline, sizeof *sent_ns);
    if (!conns || !sent_ns)
        die("calloc");
    for (long i = 0; i < nconns; i++)
        conns[i].sent_ns = sent_ns + (size_t)i * pipeline;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    for (long i = 0; i < nconns; i++)
        start_connect(&conns[i], ai);
    freeaddrinfo(ai);

    struct epoll_event events[MAX_EVENTS];
    double measure_start = 0, measure_end = 0, phase_end = 0;
    double cpu_start = 0, cpu_end = 0;
    for (;;) {
        double now = now_s();
        double wake = INFINITY;
        if (phase == PHASE_CONNECT) {
            wake = expire_connects(now);
            if (pending_connects == 0) {
                start_traffic();
                phase = PHASE_WARMUP;
                phase_end = now + warmup;
            }
        }
        if (phase == PHASE_WARMUP && now >= phase_end) {
            phase = PHASE_MEASURE;
            measure_start = now;
            cpu_start = cpu_s();
            phase_end = now + duration;
        }
        if (phase == PHASE_MEASURE && now >= phase_end) {
            measure_end = now;
            cpu_end = cpu_s();
            break;
        }
        /* Every connection gone: waiting out the clock would measure nothing. */
        if (phase != PHASE_CONNECT && alive == 0) {
            measure_end = phase == PHASE_MEASURE ? now : measure_start;
            cpu_end = phase == PHASE_MEASURE ? cpu_s() : cpu_start;
            break;
        }
        if (phase != PHASE_CONNECT)
            wake = phase_end;

        /* Rounded up, so the loop never wakes just short of a boundary. */
        int timeout = (int)((wake - now) * 1000) + 1;
        int n = epoll_wait(epfd, events, MAX_EVENTS, isinf(wake) ? -1 : timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++)
            on_event(events[i].data.ptr, events[i].events);
    }

    double elapsed = measure_end - measure_start;
    printf("{\"connections\":%ld,\"size\":%zu,\"pipeline\":%llu,"
           "\"connected\":%ld,\"duration_s\":%.3f,\"messages\":%llu,"
           "\"rps\":%.1f,\"mismatches\":%llu,\"errors\":%llu,"
           "\"start_s\":%.6f,\"end_s\":%.6f,\"cpu_s\":%.4f,"
           "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
           "\"p9999\":%.1f}}\n",
           nconns, req_len, (unsigned long long)pipeline, connected, elapsed,
           (unsigned long long)messages, elapsed > 0 ? (double)messages / elapsed : 0.0,
           (unsigned long long)mismatches, (unsigned long long)errors, measure_start, measure_end, cpu_end - cpu_start,
           percentile_us(0.50), percentile_us(0.90), percentile_us(0.99), percentile_us(0.999),
           percentile_us(0.9999));
    fflush(stdout);
    /* A server that accepts but never answers must not pass as a result. */
    if (messages == 0)
        fprintf(stderr, "echo_load: no round trips completed while measuring\n");
    return mismatches || errors || messages == 0 ? 1 : 0;
}
