/* placeholder: being written */
typedef int cmd_import_placeholder_t;
#include "cli.h"
int cmd_import(int argc, char **argv) { (void)argc; (void)argv; return 1; }
