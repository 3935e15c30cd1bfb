/*
 * The SMS branch of the outreach sender; see outreach_sms_sender.h. As for
 * e-mail, each step that changes a message is committed before the next
 * begins: the reference, then the attempt (sending), then the outcome.
 */
#include "outreach_sms_sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "log.h"
#include "outreach_sms.h"
#include "quiet_hours.h"
#include "sms_text.h"

#define NO_GATEWAY_WAIT_MS (3600LL * 1000)

int outreach_sms_sender_check(const struct outpostd_config *c, const struct policy *p,
                              struct op_error *err)
{
    if (!c->outreach_sms_gateway[0])
        return 0;
    if (!p)
        return op_error_set(err, -EINVAL, "outreach_sms_gateway",
                            "outreach_sms_gateway: no region policy is loaded, so nothing may "
                            "be sent");
    enum sms_gateway_kind kind;
    char url[SMS_GATEWAY_URL_MAX];
    int rc = sms_gateway_parse(c->outreach_sms_gateway, &kind, url, "outreach_sms_gateway", err);
    if (rc < 0)
        return rc;
    if (!sms_gateway_is_loopback(url) && !p->transfer_allowed &&
        strcmp(c->outreach_sms_gateway_country, p->country))
        return op_error_set(err, -EINVAL, "outreach_sms_gateway_country",
                            "outreach_sms_gateway_country: the gateway is in %s, but the region "
                            "profile %s keeps personal data in %s (transfer.allowed: false); use "
                            "a gateway in %s",
                            c->outreach_sms_gateway_country, p->region, p->country, p->country);
    return 0;
}

int outreach_sms_read_secret(const char *path, const char *key, char *out, size_t cap,
                             struct op_error *err)
{
    out[0] = '\0';
    if (!path || !path[0])
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return op_error_set(err, -errno, key, "%s: cannot read %s: %s", key, path, strerror(errno));
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int outreach_sms_sender_init(struct outreach_sms_sender *x, const struct outpostd_config *c,
                             struct op_error *err)
{
    memset(x, 0, sizeof *x);
    x->cfg = c;
    if (!c->outreach_sms_gateway[0])
        return 0;
    int rc =
        sms_gateway_parse(c->outreach_sms_gateway, &x->kind, x->url, "outreach_sms_gateway", err);
    if (rc == 0)
        rc = outreach_sms_read_secret(c->outreach_sms_password_file, "outreach_sms_password_file",
                                      x->password, sizeof x->password, err);
    if (rc == 0)
        rc = outreach_sms_read_secret(c->outreach_sms_auth_file, "outreach_sms_auth_file", x->auth,
                                      sizeof x->auth, err);
    if (rc == 0)
        rc = sms_gateway_global_init(err);
    if (rc < 0) {
        outreach_sms_sender_clear(x);
        return rc;
    }
    x->on = 1;
    return 0;
}

void outreach_sms_sender_clear(struct outreach_sms_sender *x)
{
    explicit_bzero(x->password, sizeof x->password);
    explicit_bzero(x->auth, sizeof x->auth);
    x->on = 0;
}

static int64_t now_ms(void)
{
    return (int64_t)hlc_wall_ms(NULL);
}

static void defer(struct store *s, int64_t id, int64_t until, const char *why)
{
    struct op_error err;
    op_error_clear(&err);
    if (outreach_sms_defer(s, id, until, &err) < 0 && err.code != -ESTALE)
        log_err("outreach: message %lld: cannot defer it (%s): %s", (long long)id, why, err.msg);
    else
        log_info("outreach: message %lld waits %lld s: %s", (long long)id,
                 (long long)((until - now_ms()) / 1000), why);
}

void outreach_sms_sender_send(struct outreach_sms_sender *x, struct store *s,
                              const struct policy *p, struct outreach_job *job)
{
    const struct outpostd_config *c = x->cfg;
    int64_t now = now_ms();
    if (!x->on) {
        defer(s, job->id, now + NO_GATEWAY_WAIT_MS, "no SMS gateway is configured");
        return;
    }
    if (p && p->quiet_sms.set) {
        int64_t until = quiet_hours_release(p->time_zone, &p->quiet_sms, now);
        if (until > now) {
            defer(s, job->id, until, "quiet hours for SMS in the region");
            return;
        }
    }
    struct op_error err;
    op_error_clear(&err);
    char token[OUTREACH_TOKEN_BUF], unused[OUTREACH_TOKEN_BUF], ref[OUTREACH_SMS_REF_BUF];
    int rc = outreach_new_token(token, &err);
    if (rc == 0)
        rc = outreach_new_token(unused, &err);
    if (rc == 0 && outreach_sms_token_ref(token, ref) < 0)
        rc = op_error_set(&err, -EIO, NULL, "cannot hash the delivery report token");
    /* The reference is on disk before the attempt, the attempt before a
     * byte goes to the gateway. */
    if (rc == 0)
        rc = outreach_sms_set_ref(s, job->id, ref, &err);
    if (rc == 0)
        rc = outreach_attempt(s, job, x->url, unused, 0, &err);
    explicit_bzero(unused, sizeof unused);
    if (rc < 0) {
        if (rc != -ESTALE)
            log_err("outreach: message %lld: cannot record the attempt: %s", (long long)job->id,
                    err.msg);
        explicit_bzero(token, sizeof token);
        return;
    }
    struct sms_count cnt;
    long bad = 0;
    enum outreach_outcome oc;
    char detail[300];
    struct sms_result r;
    memset(&r, 0, sizeof r);
    if (sms_text_count(job->body, &cnt, &bad) < 0) {
        oc = OUTREACH_PERMANENT;
        snprintf(detail, sizeof detail, "the text is not UTF-8 at byte %ld", bad + 1);
    } else if (cnt.segments > c->outreach_sms_max_segments) {
        oc = OUTREACH_PERMANENT;
        snprintf(detail, sizeof detail,
                 "the text takes %u segments (%u %s units), over outreach_sms_max_segments %u",
                 cnt.segments, cnt.units, sms_coding_name(cnt.coding),
                 c->outreach_sms_max_segments);
    } else {
        char dlr[1024] = "";
        if (x->kind == SMS_GATEWAY_KANNEL && c->outreach_sms_callback_url[0])
            snprintf(dlr, sizeof dlr, "%s/o/sms/dlr?t=%s&type=%%d&smsc=%%A",
                     c->outreach_sms_callback_url, token);
        char mref[32];
        snprintf(mref, sizeof mref, "outpost-%lld", (long long)job->id);
        struct sms_message m = {
            .kind = x->kind,
            .url = x->url,
            .ca_file = c->outreach_sms_ca_file,
            .user = c->outreach_sms_user,
            .password = x->password,
            .from = c->outreach_sms_from,
            .to = job->address,
            .text = job->body,
            .ucs2 = cnt.coding == SMS_UCS2,
            .dlr_url = dlr,
            .auth = x->auth,
            .json_body = c->outreach_sms_json_template,
            .json_id = c->outreach_sms_json_id,
            .ref = mref,
            .timeout_ms = (long)c->outreach_timeout_ms,
        };
        sms_gateway_send(&m, &r);
        explicit_bzero(dlr, sizeof dlr);
        oc = r.outcome == SMS_SENT        ? OUTREACH_SENT
             : r.outcome == SMS_PERMANENT ? OUTREACH_PERMANENT
             : r.outcome == SMS_UNKNOWN   ? OUTREACH_UNKNOWN
                                          : OUTREACH_TEMPORARY;
        snprintf(detail, sizeof detail, "%s", r.detail);
    }
    explicit_bzero(token, sizeof token);
    rc = outreach_outcome(s, job->id, oc, oc == OUTREACH_SENT ? "" : detail, c->outreach_retry_s,
                          c->outreach_max_attempts, 0, &err);
    if (rc == 0 && oc == OUTREACH_SENT && r.gateway_id[0]) {
        char gref[SMS_GATEWAY_ID_MAX + 8];
        snprintf(gref, sizeof gref, "json:%s", r.gateway_id);
        rc = outreach_sms_set_sent_ref(s, job->id, gref, &err);
    }
    if (rc < 0)
        log_err("outreach: message %lld: cannot record the outcome (%s): %s", (long long)job->id,
                detail, err.msg);
    else if (oc == OUTREACH_UNKNOWN)
        log_warning("outreach: message %lld: outcome unknown: %s", (long long)job->id, detail);
    else if (oc != OUTREACH_SENT)
        log_info("outreach: message %lld: %s", (long long)job->id, detail);
}
