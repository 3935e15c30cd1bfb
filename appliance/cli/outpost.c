/*
 * `outpost`, the admin CLI. The command table and the parsing are
 * cli.c's (cli_main); each command is one cmd_<name>.c. Commands open the
 * database themselves, so `--help` and usage errors never touch it.
 */
#include <sys/stat.h>

#include "cli.h"

int main(int argc, char **argv)
{
    /* Databases, backups and exports hold personal data: files this
     * process creates are for its user alone. */
    umask(077);
    return cli_main(argc, argv);
}
