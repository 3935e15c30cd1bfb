/* placeholder: being written */
typedef int cmd_export_placeholder_t;
#include "cli.h"
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; return 1; }
