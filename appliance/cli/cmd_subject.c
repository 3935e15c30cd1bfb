/*
 * `outpost subject export|erase CONTACT_ID`: a data subject's rights of
 * access and erasure (docs/SUBJECT_RIGHTS.md). The work is subject.c's;
 * this file parses the command line, asks before erasing, writes the
 * export atomically when given a file, and maps outcomes to exit codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "db.h"
#include "hlc.h"
#include "subject.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: outpost subject export CONTACT_ID [--format json|csv] [--output FILE]\n"
            "       outpost subject erase CONTACT_ID [--reason TEXT] [--yes]\n"
            "       (both take --db PATH)\n\n"
            "export  everything the node holds about one person: the contact, its\n"
            "        organization links and organizations, deals, activities, tasks,\n"
            "        notes, consents with their evidence, and the audit rows about\n"
            "        them. JSON (default) or CSV with the columns entity,id,field,value.\n"
            "erase   blank and tombstone the contact and every record about the person,\n"
            "        put the e-mail address and phone number on the suppression list (as\n"
            "        keyed hashes) and queue the erasure for HQ ahead of other changes.\n"
            "        Cannot be undone. Asks for confirmation unless --yes. The reason\n"
            "        is kept: do not put personal data in it.\n\n"
            "  --db PATH       database file (default: $OUTPOST_DB, else %s)\n"
            "  --format FMT    json (default) or csv\n"
            "  --output FILE   write to FILE atomically (mode 0600) instead of stdout\n"
            "  --reason TEXT   why (a ticket number, \"Art. 17 request\")\n"
            "  --yes           do not ask\n\n"
            "Exit status: 0 ok, 1 failed, 2 usage, 5 no such contact.\n",
            CLI_DEFAULT_DB);
}

static int write_doc(json_t *doc, int csv, FILE *f, struct op_error *err)
{
    if (csv)
        return subject_write_csv(doc, f, err);
    if (json_dumpf(doc, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || fputc('\n', f) == EOF ||
        fflush(f) != 0)
        return op_error_set(err, -EIO, NULL, "cannot write the export: %s", strerror(errno));
    return 0;
}

/* Writes to path.tmp (0600), fsyncs and renames over path. */
static int write_file(json_t *doc, int csv, const char *path, struct op_error *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, NULL, "%s: file name too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return op_error_set(err, -errno, NULL, "cannot create %s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    int rc = write_doc(doc, csv, f, err);
    if (rc == 0 && fsync(fileno(f)) != 0)
        rc = op_error_set(err, -errno, NULL, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == 0)
        rc = op_error_set(err, -errno, NULL, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = op_error_set(err, -errno, NULL, "cannot rename %s to %s: %s", tmp, path,
                          strerror(errno));
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int confirm(const char *id)
{
    fprintf(stderr,
            "Erase contact %s and every record about the person? This cannot be undone.\n"
            "Type 'erase' to go on: ",
            id);
    char line[32];
    if (!fgets(line, sizeof line, stdin))
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return !strcmp(line, "erase");
}

struct args {
    int csv; /* the index of the format: json, csv */
    const char *output, *reason;
    int yes;
};

static int run(const struct cli_call *c)
{
    const struct args *a = c->args;
    const char *output = a->output, *reason = a->reason;
    int csv = a->csv, yes = a->yes;
    if (c->npos != 2)
        return cli_bad(c, "expected 'export ID' or 'erase ID'");
    const char *verb = c->pos[0], *id = c->pos[1];
    int erase = !strcmp(verb, "erase");
    if (!erase && strcmp(verb, "export"))
        return cli_bad(c, "unknown subcommand '%s' (export or erase)", verb);
    if (erase && (output || csv))
        return cli_bad(c, "--format and --output apply to export only");
    if (!erase && (reason || yes))
        return cli_bad(c, "--reason and --yes apply to erase only");
    if (reason && strlen(reason) > SUBJECT_REASON_MAX)
        return cli_bad(c, "--reason: longer than %d bytes", SUBJECT_REASON_MAX);

    struct store *s;
    int ret = cli_open_store(erase ? "subject erase" : "subject export", c->db_path,
                             erase ? 0 : DB_OPEN_READONLY, &s);
    if (ret != CLI_OK)
        return ret;
    struct op_error err;
    op_error_clear(&err);
    int rc;
    if (!erase) {
        json_t *doc = NULL;
        rc = subject_export(s, id, hlc_wall_ms(NULL), &doc, &err);
        if (rc == 0)
            rc = output ? write_file(doc, csv, output, &err) : write_doc(doc, csv, stdout, &err);
        json_decref(doc);
        store_close(s);
        if (rc < 0)
            return cli_fail("subject export", rc, &err);
        if (output)
            printf("exported contact %s to %s\n", id, output);
        return CLI_OK;
    }
    json_t *probe = NULL;
    rc = store_get(s, &entity_contact, id, STORE_INCLUDE_DELETED, &probe, &err);
    json_decref(probe);
    if (rc < 0) {
        store_close(s);
        return cli_fail("subject erase", rc, &err);
    }
    if (!yes && !confirm(id)) {
        store_close(s);
        fprintf(stderr, "outpost subject erase: not confirmed; nothing was changed\n");
        return CLI_FAIL;
    }
    struct subject_erase_report rep;
    rc = subject_erase(s, id, reason, hlc_wall_ms(NULL), &rep, &err);
    store_close(s);
    if (rc < 0)
        return cli_fail("subject erase", rc, &err);
    if (!rep.records) {
        printf("contact %s was already erased; nothing to do\n", id);
        return CLI_OK;
    }
    printf("erased contact %s: %" PRIu64 " records", id, rep.records);
    for (size_t i = 1; subject_entities[i]; i++)
        if (rep.by_entity[i])
            printf(", %" PRIu64 " %s", rep.by_entity[i],
                   rep.by_entity[i] == 1 ? subject_entities[i]->name : subject_entities[i]->plural);
    printf("; %u addresses suppressed; queued for HQ\n", rep.suppressed);
    return CLI_OK;
}

static const struct cli_option opts[] = {
    CLI_CHOICE("format", struct args, csv, "json", "csv"),
    CLI_FILE("output", struct args, output),
    CLI_STR("reason", struct args, reason),
    CLI_FLAG("yes", struct args, yes),
    CLI_OPT_END,
};

/* export and erase are arguments, not subcommands: options may come first
 * ("outpost subject --db x export ID"). */
const struct cli_command cmd_subject = {
    CLI_COMMAND("subject", "export or erase everything held about one person", run, usage, opts,
                struct args),
};
