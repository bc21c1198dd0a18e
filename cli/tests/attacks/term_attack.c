/* A hostile program on the sandbox's terminal (fd 0), for cli/tests/terminal_attacks.rs.
 * Each mode prints one line per finding on stdout ("NAME: RESULT"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

static int tty_nr(void) {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    char state; int ppid, pgrp, sid, nr;
    if (sscanf(p + 2, "%c %d %d %d %d", &state, &ppid, &pgrp, &sid, &nr) != 5) return -1;
    return nr;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* --- TIOCSCTTY steal --- */
#define SWAP_FD 100
static volatile int stop_race;
static int pipe_r;
static void *swapper(void *arg) {
    (void)arg;
    while (!stop_race) {
        dup2(pipe_r, SWAP_FD);
        dup2(0, SWAP_FD);
    }
    return NULL;
}

static int steal(int race) {
    pid_t c = fork();
    if (c < 0) { perror("fork"); return 1; }
    if (c == 0) {
        if (setsid() < 0) { printf("setsid: %s\n", strerror(errno)); fflush(stdout); _exit(1); }
        if (!race) {
            int r = ioctl(0, TIOCSCTTY, 1);
            printf("tiocsctty: %s\n", r == 0 ? "ok" : strerror(errno));
        } else {
            int p[2];
            if (pipe(p) < 0) _exit(1);
            pipe_r = p[0];
            pthread_t th[2];
            for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, swapper, NULL);
            double end = now() + 3.0;
            long tries = 0;
            while (now() < end && tty_nr() == 0) {
                ioctl(SWAP_FD, TIOCSCTTY, 1);
                tries++;
            }
            stop_race = 1;
            for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
            printf("tries: %ld\n", tries);
        }
        printf("host controlling terminal: %s\n", tty_nr() != 0 ? "STOLEN" : "none");
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    return 0;
}

/* --- Linux AIO from the background --- */
static int aio(void) {
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        aio_context_t ctx = 0;
        long r = syscall(SYS_io_setup, 1, &ctx);
        printf("io_setup: %s\n", r == 0 ? "ok" : strerror(errno));
        char buf[16];
        struct iocb cb;
        memset(&cb, 0, sizeof cb);
        cb.aio_fildes = 0;
        cb.aio_lio_opcode = IOCB_CMD_PREAD;
        cb.aio_buf = (unsigned long)buf;
        cb.aio_nbytes = sizeof buf;
        struct iocb *cbs[1] = {&cb};
        r = syscall(SYS_io_submit, ctx, 1, cbs);
        printf("io_submit: %s\n", r >= 0 ? "ok" : strerror(errno));
        if (r >= 0) {
            struct io_event ev;
            r = syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL);
            printf("io_getevents: %ld, result %lld\n", r, (long long)ev.res);
        }
        fflush(stdout);
        _exit(0);
    }
    setpgid(c, c);
    int st;
    waitpid(c, &st, WUNTRACED);
    if (WIFSTOPPED(st)) {
        printf("aio in the background: stopped by %s\n", strsignal(WSTOPSIG(st)));
        kill(c, SIGKILL);
        waitpid(c, &st, 0);
    }
    return 0;
}

/* Puts the child `c` in a group of its own (a background job), reports whether it
 * stopped or ended, then kills and reaps it. */
static int report_background(pid_t c, const char *how) {
    setpgid(c, c);
    int st;
    waitpid(c, &st, WUNTRACED);
    if (WIFSTOPPED(st))
        printf("%s in the background: stopped by %s\n", how, strsignal(WSTOPSIG(st)));
    else
        printf("%s in the background: not stopped\n", how);
    fflush(stdout);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    return 0;
}

/* --- a background reader that is not read(2) --- */
static int bg_read(const char *how) {
    int p[2];
    if (pipe(p) < 0) return 1;
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        char b[8];
        long r;
        if (strcmp(how, "preadv2") == 0) {
            struct iovec iov = {b, sizeof b};
            r = syscall(SYS_preadv2, 0, &iov, 1, -1L, -1L, 0);
        } else {
            r = splice(0, NULL, p[1], NULL, sizeof b, 0);
        }
        printf("%s: returned %ld (%s)\n", how, r, r < 0 ? strerror(errno) : "read input");
        fflush(stdout);
        _exit(0);
    }
    return report_background(c, how);
}

/* --- the positional forms from the background: Linux's ESPIPE, not notified --- */
static int bg_positional(void) {
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        char b[8] = "written";
        struct iovec iov = {b, sizeof b};
        struct { const char *name; long r; } tries[6];
        int i = 0;
#define TRY(n, call) do { errno = 0; long r_ = (call); tries[i].name = n; \
        tries[i].r = r_ < 0 ? -errno : r_; i++; } while (0)
        TRY("pread64", pread(0, b, sizeof b, 0));
        TRY("preadv", preadv(0, &iov, 1, 0));
        TRY("preadv2 at offset 0", syscall(SYS_preadv2, 0, &iov, 1, 0L, 0L, 0));
        TRY("pwrite64", pwrite(1, b, sizeof b, 0));
        TRY("pwritev", pwritev(1, &iov, 1, 0));
        TRY("pwritev2 at offset 0", syscall(SYS_pwritev2, 1, &iov, 1, 0L, 0L, 0));
#undef TRY
        for (int j = 0; j < i; j++)
            printf("%s: %s\n", tries[j].name,
                   tries[j].r == -ESPIPE ? "ESPIPE"
                   : tries[j].r < 0      ? strerror((int)-tries[j].r)
                                         : "moved bytes");
        fflush(stdout);
        _exit(0);
    }
    return report_background(c, "positional");
}

/* --- leave the terminal broken --- */
static int damage(const char *then) {
    struct termios t;
    tcgetattr(0, &t);
    /* Output off first: the test sees the rest through the master. */
    tcflow(0, TCOOFF);
    t.c_lflag &= ~(ECHO | ICANON);
    tcsetattr(0, TCSANOW, &t);
    struct termios lock;
    memset(&lock, 0, sizeof lock);
    lock.c_lflag = ECHO | ICANON;
    ioctl(0, TIOCSLCKTRMIOS, &lock);
    ioctl(0, TIOCEXCL);
    struct winsize ws = {.ws_row = 11, .ws_col = 22};
    ioctl(0, TIOCSWINSZ, &ws); /* last: the test waits for it */
    if (strcmp(then, "wait") == 0)
        for (;;) pause();
    return 0;
}

/* --- descriptors and what they are --- */
static int fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        struct stat st;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        if (stat(path, &st) == 0)
            printf("fd %s: %llu %llu\n", e->d_name, (unsigned long long)st.st_dev,
                   (unsigned long long)st.st_ino);
    }
    printf("fds: end\n");
    fflush(stdout);
    return 0;
}

/* --- a background reader racing dup2 (only the pty mode can promise anything) --- */
static int race_read(void) {
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        int p[2];
        if (pipe(p) < 0) _exit(1);
        pipe_r = p[0];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, swapper, NULL);
        int fl = fcntl(p[0], F_GETFL);
        fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
        double end = now() + 3.0;
        while (now() < end) {
            char b[64];
            ssize_t r = read(SWAP_FD, b, sizeof b);
            if (r > 0) {
                printf("race read: GOT INPUT %.*s\n", (int)r, b);
                fflush(stdout);
                break;
            }
        }
        stop_race = 1;
        printf("race read: end\n");
        fflush(stdout);
        _exit(0);
    }
    setpgid(c, c);
    printf("race read: started\n");
    fflush(stdout);
    int st;
    /* Stopped (SIGTTIN) or done: either way we end it. */
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    printf("race read: reaped\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) return 2;
    const char *m = argv[1];
    if (!strcmp(m, "steal")) return steal(0);
    if (!strcmp(m, "steal-race")) return steal(1);
    if (!strcmp(m, "aio")) return aio();
    if (!strcmp(m, "bg-preadv2")) return bg_read("preadv2");
    if (!strcmp(m, "bg-splice")) return bg_read("splice");
    if (!strcmp(m, "bg-positional")) return bg_positional();
    if (!strcmp(m, "damage")) return damage(argc > 2 ? argv[2] : "exit");
    if (!strcmp(m, "fds")) return fds();
    if (!strcmp(m, "race-read")) return race_read();
    return 2;
}
