/* placeholder: being written */
typedef int backup_placeholder_t;
