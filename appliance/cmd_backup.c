/* placeholder: being written */
typedef int cmd_backup_placeholder_t;
#include "cli.h"
int cmd_backup(int argc, char **argv) { (void)argc; (void)argv; return 1; }
