/*
 * The client side of tests/bench/hostile_conns: one hostile address
 * (127.0.0.2) against a running server on 127.0.0.1:PORT, for each attack
 * kind (tests/support/hostile.h), while a normal client from 127.0.0.1
 * asks for PATH on a fresh connection per request. Prints per kind: the
 * hostile connections the server let the attacker hold, the normal
 * client's answers ok/total idle and under attack, idle p50/p99,
 * under-attack p50/p99 and the p99 ratio.
 *
 *   bench_hostile_conns PORT [PATH] [ROUNDS] [PER_ROUND]   (/healthz 5 200)
 *
 * Exit status 1 if any normal request went unanswered under attack.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hostile.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: bench_hostile_conns PORT [PATH] [ROUNDS] [PER_ROUND]\n");
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    const char *path = argc > 2 ? argv[2] : "/healthz";
    int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 5;
    int round = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 200;
    if (port <= 0 || port > 65535 || rounds <= 0 || round <= 0 ||
        (long)rounds * round > HOSTILE_MAX_SAMPLES || path[0] != '/') {
        fprintf(stderr, "bench_hostile_conns: bad argument\n");
        return 2;
    }
    hostile_raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    static struct hostile_result r;
    int bad = 0;
    printf("%-16s %9s %11s %11s %17s %17s %6s\n", "attack", "held", "idle ok", "attack ok",
           "idle p50/p99 us", "attack p50/p99 us", "ratio");
    for (int k = HOSTILE_SLOWLORIS; k <= HOSTILE_MIXED; k++) {
        hostile_sleep_ms(200);
        hostile_run(port, path, (enum hostile_kind)k, rounds, round, &r);
        char held[32], iok[32], aok[32], ip[32], ap[32];
        snprintf(held, sizeof held, "%d/%d", r.held_max, HOSTILE_CONNS);
        snprintf(iok, sizeof iok, "%d/%d", r.idle.ok, r.idle.tries);
        snprintf(aok, sizeof aok, "%d/%d", r.attack.ok, r.attack.tries);
        snprintf(ip, sizeof ip, "%lld/%lld", (long long)r.idle.p50, (long long)r.idle.p99);
        snprintf(ap, sizeof ap, "%lld/%lld", (long long)r.attack.p50, (long long)r.attack.p99);
        printf("%-16s %9s %11s %11s %17s %17s %6.2f\n", hostile_names[k], held, iok, aok, ip, ap,
               r.idle.p99 ? (double)r.attack.p99 / (double)r.idle.p99 : 0.0);
        fflush(stdout);
        bad |= r.attack.ok != r.attack.tries;
    }
    return bad;
}
