/* Tests for sync/net/daemon.c on a loop of the test's own: SIGHUP calls
 * the reload hook between RELOADING=1 and READY=1, the first SIGTERM or
 * SIGINT calls the stop hook once after STOPPING=1 and later ones nothing,
 * the watchdog pings when systemd asks for it, daemon_close lets the loop
 * end, the host of a listen address, the umask daemon_init sets, and root
 * refused unless --allow-root or OUTPOST_ALLOW_ROOT=1 says otherwise. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "testlib.h"

struct run {
    struct daemon d;
    uv_timer_t tick;
    int step;
    int reloads, stops;
};

static void reload(void *ctx)
{
    struct run *r = ctx;
    r->reloads++;
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

int main(void)
{
    daemon_init("test_daemon");
    RUN(signals_and_notifications);
    RUN(listen_host);
    RUN(umask_set);
    RUN(allow_root_flag);
    RUN(root_refused);
    return tl_report();
}
