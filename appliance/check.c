/* placeholder: being written */
typedef int check_placeholder_t;
