/*
 * main.c - cmig-bundle: the command table and dispatch.
 *
 * Commands are matched exactly (no abbreviations), `help CMD` and
 * `CMD --help` print the same text, and every command returns an exit
 * code from the table in cli.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct command commands[] = {
    {"keygen", cmd_keygen, "create a signing key pair (minisign format)", USAGE_KEYGEN},
    {"build", cmd_build, "pack a migrations directory into a signed bundle", USAGE_BUILD},
    {"sign", cmd_sign, "sign an existing bundle", USAGE_SIGN},
    {"verify", cmd_verify, "verify a bundle's signature and contents", USAGE_VERIFY},
    {"inspect", cmd_inspect, "show what a bundle holds", USAGE_INSPECT},
    {"diff", cmd_diff, "compare two releases of a bundle", USAGE_DIFF},
};

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cmig-bundle COMMAND [options]\n\n"
               "Packs database migrations into signed, versioned bundles.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  cmig-bundle help COMMAND    help for one command\n"
               "  cmig-bundle --version       print the version\n\n"
               "exit codes: 0 ok, 1 not verified (diff: differences), 2 usage, 3 invalid input,\n"
               "            4 not append-only, 5 key or password, 6 I/O or system error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("cmig-bundle %s\n", CMIG_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        const struct command *c = find(argv[2]);
        if (!c)
            return cli_usage(NULL, "unknown command '%s'", argv[2]);
        fputs(c->usage, stdout);
        return EXIT_OK;
    }
    const struct command *c = find(cmd);
    if (!c) {
        fprintf(stderr, "cmig-bundle: error: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return EXIT_OK;
        }
    }
    /* Options may follow the command's arguments ("inspect B.cmig --json"),
     * as --help says. glibc's getopt_long reorders argv to allow that, but
     * stops at the first argument when POSIXLY_CORRECT is set, and then
     * takes every later option for an argument. The variable means nothing
     * else to cmig-bundle, which starts no other program: it is dropped
     * before the first getopt call reads it, so the same words parse the
     * same everywhere. */
    unsetenv("POSIXLY_CORRECT");
    /* getopt names argv[0] in its messages: make that the whole command. */
    static char prog[32];
    snprintf(prog, sizeof prog, "cmig-bundle %s", c->name);
    argv[1] = prog;
    return c->run(argc - 1, argv + 1);
}
