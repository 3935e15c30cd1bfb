/*
 * The SQL migrations, embedded at build time from the .sql files in schema/migrations.
 * Migration i (1-based) takes a database from user_version i-1 to i;
 * schema_migrations[i-1] holds it. Nothing is read from disk at run time.
 */
#ifndef OUTPOST_SCHEMA_MIGRATIONS_H
#define OUTPOST_SCHEMA_MIGRATIONS_H

struct schema_migration {
    int number;
    const char *name;
    const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
