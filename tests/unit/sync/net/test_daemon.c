/* Tests for sync/net/daemon.c on a loop of the test's own: SIGHUP calls
 * the reload hook between RELOADING=1 and READY=1, the first SIGTERM or
 * SIGINT calls the stop hook once after STOPPING=1 and later ones nothing,
 * the watchdog pings when systemd asks for it, daemon_close lets the loop
 * end, the host of a listen address, the umask daemon_init sets, and root
 * refused unless --allow-root or OUTPOST_ALLOW_ROOT=1 says otherwise; a
 * reload request (the units' ExecReload) gets the daemon's own answer:
 * taken, refused with its reason, or no answer in time, and a pid that is
 * none is refused before anything is signalled. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "testlib.h"

struct run {
    struct daemon d;
    uv_timer_t tick;
    int step;
    int reloads, stops;
};

static void reload_counted(void *ctx)
{
    struct run *r = ctx;
    r->reloads++;
}

static int reload(void *ctx, struct op_error *err)
{
    (void)err;
    reload_counted(ctx);
    return 0;
}

static void stop(void *ctx)
{
    struct run *r = ctx;
    r->stops++;
}

static const struct daemon_hooks hooks = {.reload = reload, .stop = stop};

/* One signal a tick, each handled before the next is raised; the stop
 * hook's work "finishes" two ticks after the first SIGINT. */
static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    switch (r->step++) {
    case 0:
        raise(SIGHUP);
        break;
    case 1:
        CHECK_EQ(r->reloads, 1);
        CHECK_EQ(r->d.stopping, 0);
        raise(SIGINT);
        break;
    case 2:
        CHECK_EQ(r->stops, 1);
        CHECK_EQ(r->d.stopping, 1);
        raise(SIGTERM); /* while stopping: nothing more */
        break;
    default:
        daemon_close(&r->d);
        daemon_close(&r->d); /* a second call does nothing */
        uv_close((uv_handle_t *)t, NULL);
    }
}

static int notify_socket(char *dir, struct sockaddr_un *sa)
{
    if (!mkdtemp(dir))
        return -1;
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "%s/notify", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0)
        return -1;
    return fd;
}

static void signals_and_notifications(void)
{
    char dir[] = "/tmp/outpost-test-daemon-XXXXXX";
    struct sockaddr_un sa = {0};
    int fd = notify_socket(dir, &sa);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "20000000", 1); /* a ping at start, then every 10 s */

    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);
    struct run r = {0};
    CHECK_EQ(daemon_start(&r.d, &loop, &hooks, &r), 0);
    daemon_ready("serving");
    uv_timer_init(&loop, &r.tick);
    r.tick.data = &r;
    uv_timer_start(&r.tick, on_tick, 20, 20);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* ends: every handle closed */
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(r.reloads, 1);
    CHECK_EQ(r.stops, 1);

    /* what systemd was told, in order */
    const char *want[] = {"READY=1\nSTATUS=serving", "WATCHDOG=1", "RELOADING=1", "READY=1",
                          "STOPPING=1"};
    char got[8][64];
    int n = 0;
    for (; n < 8; n++) {
        ssize_t len = recv(fd, got[n], sizeof got[n] - 1, MSG_DONTWAIT);
        if (len < 0)
            break;
        got[n][len] = '\0';
    }
    CHECK_EQ(n, 5);
    /* the first ping is due at once, but READY is sent before the loop runs */
    for (int i = 0; i < n && i < 5; i++)
        CHECK_STR(got[i], want[i]);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(sa.sun_path);
    rmdir(dir);
}

static void listen_host(void)
{
    char host[32];
    daemon_listen_host("0.0.0.0:8080", host, sizeof host);
    CHECK_STR(host, "0.0.0.0");
    daemon_listen_host("[::1]:8443", host, sizeof host);
    CHECK_STR(host, "[::1]");
    daemon_listen_host("localhost", host, sizeof host);
    CHECK_STR(host, "localhost");
    char small[4];
    daemon_listen_host("10.0.0.1:80", small, sizeof small);
    CHECK_STR(small, "10.");
}

/* daemon_init (main's first call) left the umask at 077. */
static void umask_set(void)
{
    mode_t old = umask(022);
    CHECK_EQ((int)old, 077);
    umask(old);
}

static void allow_root_flag(void)
{
    char a0[] = "outpostd", a1[] = "--db", a2[] = "x.db", a3[] = "--allow-root", a4[] = "-v";
    char *argv[] = {a0, a1, a3, a2, a3, a4, NULL};
    int argc = 6;
    CHECK_EQ(daemon_take_allow_root(&argc, argv), 1);
    CHECK_EQ(argc, 4);
    CHECK_STR(argv[1], "--db");
    CHECK_STR(argv[2], "x.db");
    CHECK_STR(argv[3], "-v");
    CHECK(argv[4] == NULL);
    CHECK_EQ(daemon_take_allow_root(&argc, argv), 0);
    CHECK_EQ(argc, 4);
    /* only the whole word: a config key's value is left alone */
    char b3[] = "--allow-rooted";
    char *argv2[] = {a0, b3, NULL};
    argc = 2;
    CHECK_EQ(daemon_take_allow_root(&argc, argv2), 0);
    CHECK_EQ(argc, 2);
}

static void root_refused(void)
{
    const char *saved = getenv(DAEMON_ALLOW_ROOT_ENV);
    char *keep = saved ? strdup(saved) : NULL;
    int root = geteuid() == 0;
    unsetenv(DAEMON_ALLOW_ROOT_ENV);
    CHECK_EQ(daemon_check_user(0), root ? -EPERM : 0);
    CHECK_EQ(daemon_check_user(1), 0);
    setenv(DAEMON_ALLOW_ROOT_ENV, "0", 1);
    CHECK_EQ(daemon_check_user(0), root ? -EPERM : 0);
    setenv(DAEMON_ALLOW_ROOT_ENV, "yes", 1);
    CHECK_EQ(daemon_check_user(0), root ? -EPERM : 0);
    setenv(DAEMON_ALLOW_ROOT_ENV, "1", 1);
    CHECK_EQ(daemon_check_user(0), 0);
    if (keep)
        setenv(DAEMON_ALLOW_ROOT_ENV, keep, 1);
    else
        unsetenv(DAEMON_ALLOW_ROOT_ENV);
    free(keep);
}

/* A daemon in a child process: takes its first reload, refuses the
 * second, stops on SIGTERM. Writes a byte to ready once it watches. */
struct child {
    struct daemon d;
    int reloads;
};

static int child_reload(void *ctx, struct op_error *err)
{
    struct child *c = ctx;
    if (++c->reloads == 2)
        return op_error_set(err, -EINVAL, "listen", "bad.conf:2: listen: not an address");
    return 0;
}

static void child_stop(void *ctx)
{
    struct child *c = ctx;
    daemon_close(&c->d);
}

static const struct daemon_hooks child_hooks = {.reload = child_reload, .stop = child_stop};

static pid_t start_child(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        uv_loop_t loop;
        struct child c = {0};
        if (uv_loop_init(&loop) < 0 || daemon_start(&c.d, &loop, &child_hooks, &c) < 0)
            _exit(3);
        if (write(p[1], "r", 1) != 1)
            _exit(3);
        close(p[1]);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(0);
    }
    close(p[1]);
    char b;
    ssize_t n = read(p[0], &b, 1);
    close(p[0]);
    return n == 1 ? pid : -1;
}

static void reload_request(void)
{
    char dir[] = "/tmp/outpost-test-reload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("RUNTIME_DIRECTORY", dir, 1);
    pid_t pid = start_child();
    CHECK(pid > 0);
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 10000, &err), 0);
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 10000, &err), DAEMON_RELOAD_REFUSED);
    CHECK_STR(err.msg, "bad.conf:2: listen: not an address");
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 10000, &err), 0); /* the third is taken again */

    /* What the daemon wrote: its pid, the count, the outcome. */
    char path[128], line[128] = "";
    snprintf(path, sizeof path, "%s/%s", dir, DAEMON_RELOAD_FILE);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
    }
    char want[64];
    snprintf(want, sizeof want, "%d 3 ok\n", (int)pid);
    CHECK_STR(line, want);

    /* Not a pid: nothing is signalled. */
    const char *bad[] = {"", "abc", "12x", "-5", "0", "1", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_error_clear(&err);
        CHECK_EQ(daemon_reload_request(bad[i], 100, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, "is not a process id");
    }
    kill(pid, SIGTERM);
    int status = -1;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Gone: kill(2)'s answer. */
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 100, &err), -ESRCH);
    CHECK_CONTAINS(err.msg, "cannot signal process");

    /* A process that takes SIGHUP but never answers: a timeout, not a
     * success. */
    pid_t mute = fork();
    if (mute == 0) {
        signal(SIGHUP, SIG_IGN);
        for (;;)
            pause();
    }
    usleep(100 * 1000);
    snprintf(pidtext, sizeof pidtext, "%d", (int)mute);
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 300, &err), -ETIMEDOUT);
    CHECK_CONTAINS(err.msg, "did not report the reload");
    /* Without RUNTIME_DIRECTORY (not under systemd) the signal is all. */
    unsetenv("RUNTIME_DIRECTORY");
    op_error_clear(&err);
    CHECK_EQ(daemon_reload_request(pidtext, 300, &err), 0);
    kill(mute, SIGKILL);
    waitpid(mute, NULL, 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    daemon_init("test_daemon");
    RUN(signals_and_notifications);
    RUN(listen_host);
    RUN(umask_set);
    RUN(allow_root_flag);
    RUN(root_refused);
    RUN(reload_request);
    return tl_report();
}
