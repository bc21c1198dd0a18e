/* Line discipline and hangup requests on ptys, for cli/tests/pty_ioctls.rs.
 * Each mode prints one line per finding on stdout ("NAME: RESULT"), RESULT being "ok",
 * a number, or the errno's name. Run the same mode on the host and in the sandbox to
 * compare. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_TTY_ 0
#define N_SLIP_ 1
#define N_HDLC_ 13
#define N_NULL_ 27

static const char *res(int r) {
    static char buf[64];
    if (r == 0) return "ok";
    const char *name = strerrorname_np(errno);
    snprintf(buf, sizeof buf, "%s", name ? name : "?");
    return buf;
}

static int setd(int fd, int disc) { return ioctl(fd, TIOCSETD, &disc); }

static int getd(int fd) {
    int d = -1;
    if (ioctl(fd, TIOCGETD, &d) < 0) return -errno;
    return d;
}

static int open_pty(int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) { printf("posix_openpt: %s\n", res(-1)); return -1; }
    if (grantpt(m) || unlockpt(m)) { printf("unlockpt: %s\n", res(-1)); return -1; }
    *slave = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (*slave < 0) { printf("TIOCGPTPEER: %s\n", res(-1)); return -1; }
    return m;
}

/* Everything a program may ask of a pty it made itself. */
static int own_pty(void) {
    int s, m = open_pty(&s);
    if (m < 0) return 1;
    printf("getd slave: %d\n", getd(s));
    printf("setd N_TTY slave: %s\n", res(setd(s, N_TTY_)));
    printf("setd N_TTY master: %s\n", res(setd(m, N_TTY_)));
    printf("getd after: %d\n", getd(s));
    printf("setd N_SLIP slave: %s\n", res(setd(s, N_SLIP_)));
    printf("setd N_HDLC master: %s\n", res(setd(m, N_HDLC_)));
    printf("setd 99: %s\n", res(setd(s, 99)));
    printf("setd -1: %s\n", res(setd(s, -1)));
    printf("setd bad pointer: %s\n", res(ioctl(s, TIOCSETD, (void *)8)));
    printf("setd N_NULL slave: %s\n", res(setd(s, N_NULL_)));
    /* Back to N_TTY if N_NULL was taken, so that the hangup below is comparable. */
    setd(s, N_TTY_);
    printf("getd end: %d\n", getd(s));
    int devnull = open("/dev/null", O_RDWR);
    printf("setd on /dev/null: %s\n", res(setd(devnull, N_TTY_)));
    int pipefd[2];
    if (pipe(pipefd) == 0) printf("setd on a pipe: %s\n", res(setd(pipefd[0], N_TTY_)));
    printf("setd on a closed fd: %s\n", res(setd(777, N_TTY_)));
    int r = ioctl(s, TIOCVHANGUP);
    printf("vhangup slave: %s\n", res(r));
    if (r == 0) {
        char c = 'x';
        printf("slave write after hangup: %s\n", res(write(s, &c, 1) == 1 ? 0 : -1));
        ssize_t n = read(s, &c, 1);
        printf("slave read after hangup: %zd\n", n);
    }
    printf("vhangup master: %s\n", res(ioctl(m, TIOCVHANGUP)));
    return 0;
}

/* The borrowed terminal (fd 0) swapped onto the descriptor number other threads keep
 * passing to TIOCSETD(N_NULL) and TIOCVHANGUP, the other file at that number being a
 * pty of the program's own. */
#define SWAP_FD 100
static volatile int stop_race;
static int own_slave;
static void *swapper(void *arg) {
    (void)arg;
    while (!stop_race) {
        dup2(own_slave, SWAP_FD);
        dup2(0, SWAP_FD);
    }
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int race(void) {
    int m = open_pty(&own_slave);
    if (m < 0) return 1;
    /* A hangup of the user's terminal would send SIGHUP here too: keep counting. */
    signal(SIGHUP, SIG_IGN);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, swapper, NULL);
    long hang_ok = 0, hang_eperm = 0, hang_other = 0, setd_ok = 0, setd_eperm = 0;
    double end = now() + 2.0;
    while (now() < end) {
        int d = N_NULL_;
        if (ioctl(SWAP_FD, TIOCSETD, &d) == 0) setd_ok++;
        else if (errno == EPERM) setd_eperm++;
        d = N_TTY_;
        ioctl(SWAP_FD, TIOCSETD, &d);
        int r = ioctl(SWAP_FD, TIOCVHANGUP);
        if (r == 0) hang_ok++;
        else if (errno == EPERM) hang_eperm++;
        else hang_other++;
    }
    stop_race = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    printf("setd N_NULL ok: %ld\n", setd_ok);
    printf("setd N_NULL refused: %ld\n", setd_eperm);
    printf("vhangup ok: %ld\n", hang_ok);
    printf("vhangup refused: %ld\n", hang_eperm);
    printf("vhangup other: %ld\n", hang_other);
    printf("borrowed getd: %d\n", getd(0));
    return 0;
}

/* A thread with a descriptor table of its own (unshare(CLONE_FILES)) has its own pty
 * at SWAP_FD while the process's table has the borrowed terminal (fd 0) there: each
 * thread's TIOCVHANGUP is judged on the file of its own table. */
static void *private_thread(void *arg) {
    (void)arg;
    if (unshare(CLONE_FILES) < 0) { printf("unshare: %s\n", res(-1)); return NULL; }
    dup2(own_slave, SWAP_FD);
    printf("private table vhangup: %s\n", res(ioctl(SWAP_FD, TIOCVHANGUP)));
    return NULL;
}

static int private_table(void) {
    int m = open_pty(&own_slave);
    if (m < 0) return 1;
    signal(SIGHUP, SIG_IGN);
    dup2(0, SWAP_FD);
    pthread_t th;
    pthread_create(&th, NULL, private_thread, NULL);
    pthread_join(th, NULL);
    char c = 'x';
    printf("own pty write after: %s\n", res(write(own_slave, &c, 1) == 1 ? 0 : -1));
    printf("shared table vhangup: %s\n", res(ioctl(SWAP_FD, TIOCVHANGUP)));
    printf("borrowed getd: %d\n", getd(0));
    return 0;
}

/* TIOCVHANGUP on the program's own controlling terminal (fd 0). */
static int hangup_stdin(void) {
    int r = ioctl(0, TIOCVHANGUP);
    printf("vhangup stdin: %s\n", res(r));
    fflush(stdout);
    if (r < 0) return 1;
    /* The hangup's SIGHUP reaches the session leader, which passes it on to this
     * group when it next runs: wait for it, as a program reading its terminal would
     * (exiting at once raced the leader on a busy machine). SIGALRM ends a wait that
     * nothing ends. */
    alarm(30);
    for (;;) pause();
}

/* TIOCSETD(N_TTY) on the controlling terminal from a background group: Linux's
 * tty_check_change stops the group with SIGTTOU, unless SIGTTOU is ignored. A session
 * leader makes its own pty its controlling terminal; a child in a group of its own
 * (in the background) asks. */
static int bg_setd(void) {
    pid_t leader = fork();
    if (leader < 0) return 1;
    if (leader == 0) {
        if (setsid() < 0) { printf("setsid: %s\n", res(-1)); _exit(1); }
        int s, m = open_pty(&s);
        if (m < 0) _exit(1);
        if (ioctl(s, TIOCSCTTY, 0) < 0) { printf("TIOCSCTTY: %s\n", res(-1)); _exit(1); }
        for (int ignore = 0; ignore < 2; ignore++) {
            pid_t c = fork();
            if (c == 0) {
                setpgid(0, 0);
                if (ignore) signal(SIGTTOU, SIG_IGN);
                int d = N_TTY_;
                int r = ioctl(s, TIOCSETD, &d);
                printf("bg setd%s: %s\n", ignore ? " SIGTTOU ignored" : "", res(r));
                _exit(0);
            }
            setpgid(c, c);
            int st = 0;
            waitpid(c, &st, WUNTRACED);
            if (WIFSTOPPED(st)) {
                printf("bg setd%s: stopped by %s\n", ignore ? " SIGTTOU ignored" : "",
                       sigabbrev_np(WSTOPSIG(st)));
                kill(c, SIGKILL);
                waitpid(c, &st, 0);
            }
        }
        _exit(0);
    }
    int st;
    waitpid(leader, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "own-pty")) return own_pty();
    if (!strcmp(m, "race")) return race();
    if (!strcmp(m, "hangup-stdin")) return hangup_stdin();
    if (!strcmp(m, "bg-setd")) return bg_setd();
    if (!strcmp(m, "private-table")) return private_table();
    return 2;
}
