/* Tests for sync/toolkit/sd_notify.c: datagrams reach the socket systemd
 * names, path and abstract alike; outside systemd nothing happens. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"
#include "testlib.h"

static int listen_at(struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)sa, len) < 0)
        return -1;
    return fd;
}

static int recv_text(int fd, char *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

static void path_socket(void)
{
    char dir[] = "/tmp/outpost-test-notify-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", dir);
    int fd = listen_at(&sa, sizeof sa);
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    CHECK_EQ(sd_notify_send("READY=1\nSTATUS=serving"), 0);
    char buf[256];
    CHECK(recv_text(fd, buf, sizeof buf) > 0);
    CHECK_STR(buf, "READY=1\nSTATUS=serving");
    close(fd);
    unlink(sa.sun_path);
    rmdir(dir);
}

static void abstract_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char name[64];
    snprintf(name, sizeof name, "@outpost-test-%d", (int)getpid());
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    sa.sun_path[0] = '\0';
    int fd = listen_at(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    CHECK(fd >= 0);
    setenv("NOTIFY_SOCKET", name, 1);
    CHECK_EQ(sd_notify_send("WATCHDOG=1"), 0);
    char buf[64];
    CHECK(recv_text(fd, buf, sizeof buf) > 0);
    CHECK_STR(buf, "WATCHDOG=1");
    close(fd);
}

static void outside_systemd(void)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK_EQ(sd_notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_EQ(sd_notify_send("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

static void watchdog_interval(void)
{
    unsetenv("WATCHDOG_USEC");
    CHECK_EQ(sd_notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "3000000", 1);
    unsetenv("WATCHDOG_PID");
    CHECK_EQ(sd_notify_watchdog_usec(), 3000000);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    CHECK_EQ(sd_notify_watchdog_usec(), 3000000);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    CHECK_EQ(sd_notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "soon", 1);
    unsetenv("WATCHDOG_PID");
    CHECK_EQ(sd_notify_watchdog_usec(), 0);
}

int main(void)
{
    RUN(path_socket);
    RUN(abstract_socket);
    RUN(outside_systemd);
    RUN(watchdog_interval);
    return tl_report();
}
