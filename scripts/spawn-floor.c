/* The least a supervisor can do for `bench-run.sh`'s DAG of `touch` steps: start each
 * `touch out/L_S` (layers of WIDTH steps) in plan order, at most two at a time, and wait.
 * No shell, no history, no logs, no containment. It ignores the edges: a `touch` reads
 * nothing, and with two slots in plan order a step's inputs, 99 and 100 steps back, have
 * long ended. Used by scripts/bench-floor.sh.
 *
 *   spawn-floor vfork N WIDTH     clone(CLONE_VM | CLONE_VFORK) when a slot frees, as
 *                                 posix_spawn and bgflow do
 *   spawn-floor premade N WIDTH   the next child made ahead (CLONE_VM, its own stack),
 *                                 waiting on a futex until a slot frees, then execve
 *   spawn-floor shared N WIDTH    clone(CLONE_VM) when a slot frees, without CLONE_VFORK:
 *                                 the child execs on its own stack while the parent
 *                                 goes on, with no wake-up of the parent at the exec
 *   spawn-floor epoll N WIDTH     as vfork, but each exit is waited for as bgflow waits:
 *                                 a pidfd (CLONE_PIDFD) in an epoll set, then waitpid
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct child {
    _Atomic int go;
    char name[32];
    char *argv[3];
    char *stack;
};

enum { STACK = 64 * 1024 };

static int waits_then_runs(void *arg) {
    struct child *c = arg;
    while (atomic_load(&c->go) == 0)
        syscall(SYS_futex, &c->go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    syscall(SYS_execve, c->argv[0], c->argv, environ);
    syscall(SYS_exit, 127);
    return 0;
}

static int runs(void *arg) {
    struct child *c = arg;
    syscall(SYS_execve, c->argv[0], c->argv, environ);
    syscall(SYS_exit, 127);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4 ||
        (strcmp(argv[1], "vfork") && strcmp(argv[1], "premade") && strcmp(argv[1], "shared") &&
         strcmp(argv[1], "epoll"))) {
        fprintf(stderr, "usage: spawn-floor vfork|premade|shared|epoll N WIDTH\n");
        return 2;
    }
    int premade = strcmp(argv[1], "premade") == 0;
    int epoll = strcmp(argv[1], "epoll") == 0;
    int vfork = strcmp(argv[1], "vfork") == 0 || epoll;
    int ep = epoll ? epoll_create1(EPOLL_CLOEXEC) : -1;
    int n = atoi(argv[2]), width = atoi(argv[3]);
    struct child *c = calloc((size_t)n, sizeof *c);
    if (!c || n <= 0 || width <= 0)
        return 2;
    for (int i = 0; i < n; i++) {
        snprintf(c[i].name, sizeof c[i].name, "out/%d_%d", i / width, i % width);
        c[i].argv[0] = "/usr/bin/touch";
        c[i].argv[1] = c[i].name;
        c[i].stack = malloc(STACK);
        if (!c[i].stack)
            return 2;
    }
    int running = 0, next = 0, done = 0, made = -1;
    while (done < n) {
        while (running < 2 && next < n) {
            /* A made child is let go; any other starts now (told to go before it waits). */
            atomic_store(&c[next].go, 1);
            if (made == next) {
                syscall(SYS_futex, &c[next].go, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            } else {
                int pidfd = -1;
                int pid = clone(premade ? waits_then_runs : runs, c[next].stack + STACK,
                                CLONE_VM | SIGCHLD | (vfork ? CLONE_VFORK : 0) |
                                    (epoll ? CLONE_PIDFD : 0),
                                &c[next], &pidfd);
                if (pid < 0) {
                    perror("clone");
                    return 1;
                }
                struct epoll_event ev = {.events = EPOLLIN,
                                         .data.u64 = (uint64_t)pidfd << 32 | (uint32_t)pid};
                if (epoll && epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
                    perror("epoll_ctl");
                    return 1;
                }
            }
            running++;
            next++;
        }
        if (premade && next < n && made != next) {
            if (clone(waits_then_runs, c[next].stack + STACK, CLONE_VM | SIGCHLD, &c[next]) < 0) {
                perror("clone");
                return 1;
            }
            made = next;
        }
        int status;
        if (epoll) {
            struct epoll_event ev;
            int k;
            do
                k = epoll_wait(ep, &ev, 1, -1);
            while (k < 0);
            int pid = (int)(uint32_t)ev.data.u64, pidfd = (int)(ev.data.u64 >> 32);
            if (waitpid(pid, &status, 0) < 0) {
                perror("waitpid");
                return 1;
            }
            epoll_ctl(ep, EPOLL_CTL_DEL, pidfd, NULL);
            close(pidfd);
        } else if (wait(&status) < 0) {
            perror("wait");
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "spawn-floor: a touch failed\n");
            return 1;
        }
        running--;
        done++;
    }
    return 0;
}
