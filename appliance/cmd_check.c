/* placeholder: being written */
typedef int cmd_check_placeholder_t;
#include "cli.h"
int cmd_check(int argc, char **argv) { (void)argc; (void)argv; return 1; }
