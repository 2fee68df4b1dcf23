/*
 * echo_server.c - reference C implementation of the aioecho line protocol.
 *
 * Every line (bytes up to and including '\n', with "\r\n" kept as the
 * terminator when present) is answered with upper(body) + "_SB" + terminator,
 * upper-casing ASCII letters only.  Single-threaded, non-blocking,
 * level-triggered epoll: the point is a cheap, honest upper bound to compare
 * the Python server against, not a feature-complete replacement.
 *
 * usage: echo_server [-h HOST] [-p PORT] [--ready-fd FD]
 *
 * --ready-fd: once listening, also write aioecho's readiness line (one JSON
 * object, see aioecho.process.readiness) to descriptor FD and close it, so
 * that the benchmarks start this server with aioecho's own launcher.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096
#define MAX_EVENTS 512
#define READ_CHUNK (64 * 1024)
/* Above this much unsent output a connection is not read from: a client that
 * sends without reading must not make the server buffer without bound. */
#define OUT_HIGH_WATER (256 * 1024)
/* An unterminated line longer than this gets its connection dropped, for the
 * same reason. */
#define MAX_LINE (1024 * 1024)
#define SUFFIX "_SB"
#define SUFFIX_LEN (sizeof SUFFIX - 1)

/* Bytes data[off, len) are live; off only moves when output is sent. */
struct buf {
    char *data;
    size_t off, len, cap;
};

struct conn {
    int fd;
    uint32_t events; /* epoll interest currently registered */
    bool eof;        /* peer has finished sending: close once output drains */
    struct buf in;   /* trailing partial line, carried to the next read */
    struct buf out;  /* replies the kernel has not accepted yet */
};

static int epfd;
static int reserve_fd = -1; /* spare descriptor, given up to shed a connection on EMFILE */
static char listen_tag, signal_tag; /* epoll data.ptr markers for the non-connection fds */
static char rbuf[READ_CHUNK];
static struct buf scratch; /* replies of one read, when nothing is queued before them */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->off > 0) { /* reclaim the already-sent head before growing */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data)
        die("realloc");
    b->cap = cap;
}

static void buf_append(struct buf *b, const char *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

/* Appends the reply to one line; `len` includes the terminating '\n'. */
static void emit_reply(struct buf *dst, const char *line, size_t len)
{
    size_t body = len - 1;
    if (body > 0 && line[body - 1] == '\r')
        body--;
    buf_reserve(dst, len + SUFFIX_LEN);
    char *o = dst->data + dst->len;
    for (size_t i = 0; i < body; i++) {
        unsigned char ch = (unsigned char)line[i];
        o[i] = (char)((unsigned)(ch - 'a') < 26 ? ch - ('a' - 'A') : ch);
    }
    memcpy(o + body, SUFFIX, SUFFIX_LEN);
    memcpy(o + body + SUFFIX_LEN, line + body, len - body);
    dst->len += len + SUFFIX_LEN;
}

/* Replies to every line completed by p[0, n) into dst and keeps the
 * unterminated tail.  Returns false if a line grows past MAX_LINE. */
static bool consume(struct conn *c, const char *p, size_t n, struct buf *dst)
{
    const char *end = p + n;
    const char *nl;

    if (c->in.len > 0) {
        nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl + 1 - p) : n;
        if (c->in.len + take > MAX_LINE)
            return false;
        buf_append(&c->in, p, take);
        if (!nl)
            return true;
        emit_reply(dst, c->in.data, c->in.len);
        c->in.len = 0;
        p = nl + 1;
    }
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        emit_reply(dst, p, (size_t)(nl + 1 - p));
        p = nl + 1;
    }
    if (p < end)
        buf_append(&c->in, p, (size_t)(end - p));
    return true;
}

static void close_conn(struct conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* Sends queued output until done or the socket is full.  False on error. */
static bool flush_out(struct conn *c)
{
    while (buf_pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK;
        c->out.off += (size_t)n;
    }
    c->out.off = c->out.len = 0;
    return true;
}

static bool on_readable(struct conn *c)
{
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (n == 0) {
        c->eof = true;
        return true;
    }
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;

    /* Replies must stay in order, so they queue behind unsent output;
     * otherwise the whole batch goes out in one send and only what the
     * kernel refuses is copied into the connection's own buffer. */
    if (buf_pending(&c->out) > 0)
        return consume(c, rbuf, (size_t)n, &c->out) && flush_out(c);

    scratch.len = 0;
    if (!consume(c, rbuf, (size_t)n, &scratch))
        return false;
    if (scratch.len == 0)
        return true;
    ssize_t w = send(c->fd, scratch.data, scratch.len, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return false;
        w = 0;
    }
    if ((size_t)w < scratch.len)
        buf_append(&c->out, scratch.data + w, scratch.len - (size_t)w);
    return true;
}

/* Re-derives the epoll interest from the connection state; may close it. */
static void update_interest(struct conn *c)
{
    size_t pending = buf_pending(&c->out);
    if (c->eof && pending == 0) {
        close_conn(c);
        return;
    }
    uint32_t want = 0;
    if (!c->eof && pending <= OUT_HIGH_WATER)
        want |= EPOLLIN;
    if (pending > 0)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            close_conn(c);
            return;
        }
        c->events = want;
    }
}

static void on_conn_event(struct conn *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        close_conn(c);
        return;
    }
    if ((events & EPOLLOUT) && !flush_out(c)) {
        close_conn(c);
        return;
    }
    if ((events & EPOLLIN) && !on_readable(c)) {
        close_conn(c);
        return;
    }
    update_interest(c);
}

/* Out of descriptors, a pending connection can be neither accepted nor
 * ignored (level-triggered epoll would spin on it), so give up the spare
 * descriptor, accept the connection into it and close it straight away.
 * Returns false if there was nothing to shed. */
static bool shed_connection(int lfd)
{
    static bool warned;
    if (!warned) {
        fprintf(stderr, "accept: %s; dropping connections until descriptors free up\n",
                strerror(errno));
        warned = true;
    }
    if (reserve_fd >= 0)
        close(reserve_fd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && shed_connection(lfd))
                continue;
            return; /* EAGAIN, or a transient failure epoll will report again */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
            die("calloc");
        c->fd = fd;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            close_conn(c);
    }
}

static int open_listener(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        die("bind/listen");
    return fd;
}

static void print_listening(int lfd, int ready_fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
        die("getsockname");
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                         NI_NUMERICHOST | NI_NUMERICSERV);
    if (rc != 0) {
        fprintf(stderr, "getnameinfo: %s\n", gai_strerror(rc));
        exit(1);
    }
    printf("listening on %s:%s\n", host, port);
    fflush(stdout);
    if (ready_fd >= 0) {
        dprintf(ready_fd,
                "{\"pid\": %d, \"addresses\": [[\"%s\", %s]], \"unix\": null, "
                "\"metrics\": [], \"workers\": 1, \"loop\": \"epoll\", "
                "\"framing\": \"line\", \"tls\": false}\n",
                (int)getpid(), host, port);
        close(ready_fd);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_server [-h HOST] [-p PORT] [--ready-fd FD]  (PORT 0 picks a free port)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *port = "8089";
    int ready_fd = -1;
    static const struct option longs[] = {{"ready-fd", required_argument, NULL, 'r'}, {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h:p:", longs, NULL)) != -1) {
        switch (opt) {
        case 'r': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 65535)
                usage();
            ready_fd = (int)v;
            break;
        }
        case 'h':
            host = optarg;
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 65535)
                usage();
            port = optarg;
            break;
        }
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();

    /* Benchmarks open thousands of connections; the soft limit is often 1024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* Signals arrive as epoll events, so shutdown never races the loop. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
        die("sigprocmask");
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");

    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int lfd = open_listener(host, port);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    ev.data.ptr = &signal_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0)
        die("epoll_ctl");
    print_listening(lfd, ready_fd);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &signal_tag)
                return 0;
            if (tag == &listen_tag)
                accept_all(lfd);
            else
                on_conn_event(tag, events[i].events);
        }
    }
}
