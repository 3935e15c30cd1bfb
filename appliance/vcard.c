/* placeholder: being written */
typedef int vcard_placeholder_t;
