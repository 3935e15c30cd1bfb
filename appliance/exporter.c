/* placeholder: being written */
typedef int exporter_placeholder_t;
