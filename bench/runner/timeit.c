/*
 * timeit.c - runs one command and prints its wall time and peak RSS, for
 * the runner benchmark.
 *
 *   timeit LOG -- COMMAND [ARGS...]
 *
 * The command's stdout and stderr go to LOG (truncated first), so that a
 * failure can be shown and nothing is printed to a terminal inside the
 * measurement. Prints "WALL_US MAXRSS_KIB CPU_US" on stdout. The clock is read
 * right before fork and right after wait4, so a measurement holds the
 * fork, the exec and the whole life of the command, the same for every
 * side compared, and no shell around it. Peak RSS is the kernel's
 * ru_maxrss of the command (what GNU time's %M reports); CPU time is its
 * user plus system time (a server's work on its behalf is not in it), the
 * figure that other load on the machine disturbs least. Exits with the
 * command's status (128 + signal number when killed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: timeit LOG -- COMMAND [ARGS...]\n");
        return 125;
    }
    int log = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) {
        fprintf(stderr, "timeit: cannot open '%s': %s\n", argv[1], strerror(errno));
        return 125;
    }
    long long t0 = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "timeit: fork failed: %s\n", strerror(errno));
        return 125;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(126);
        execvp(argv[3], argv + 3);
        dprintf(log, "timeit: cannot run '%s': %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    do
        w = wait4(pid, &status, 0, &ru);
    while (w < 0 && errno == EINTR);
    long long t1 = now_us();
    if (w < 0) {
        fprintf(stderr, "timeit: wait failed: %s\n", strerror(errno));
        return 125;
    }
    long long cpu = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    printf("%lld %ld %lld\n", t1 - t0, ru.ru_maxrss, cpu);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
