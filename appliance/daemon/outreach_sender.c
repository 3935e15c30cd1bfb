/*
 * The sender thread; see outreach_sender.h. Each step that changes a
 * message is committed by outreach.c before the next begins, so kill -9
 * at any point leaves a state the next start reads correctly.
 */
#include "outreach_sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "campaign.h"
#include "db.h"
#include "hlc.h"
#include "log.h"
#include "node_policy.h"
#include "outreach.h"
#include "outreach_bounce.h"
#include "outreach_events.h"
#include "outreach_mail.h"
#include "outreach_sms.h"
#include "outreach_sms_sender.h"
#include "smtp_client.h"
#include "store.h"

#define IDLE_MS 500 /* look for due messages this often */
#define POLICY_EVERY_MS 60000
#define CAMPAIGN_EVERY_MS 1000 /* the campaigns' clock when nothing is being planned */

struct outreach_sender {
    struct outpostd_config cfg;
    char policy_file[CONFIG_PATH_MAX];
    char password[256];
    struct store *store;
    struct policy *policy;
    struct outreach_sms_sender sms;
    uv_thread_t thread;
    uv_mutex_t lock;
    uv_cond_t cond;
    int stop;
    int reload;
};

int outreach_sender_check(const struct outpostd_config *c, const struct policy *p,
                          struct op_error *err)
{
    int rc = outreach_sms_sender_check(c, p, err);
    if (rc < 0 || !c->outreach_relay[0])
        return rc;
    if (!p)
        return op_error_set(err, -EINVAL, "outreach_relay",
                            "outreach_relay: no region policy is loaded, so nothing may be sent");
    if (!smtp_client_relay_is_loopback(c->outreach_relay) && !p->transfer_allowed &&
        strcmp(c->outreach_relay_country, p->country))
        return op_error_set(err, -EINVAL, "outreach_relay_country",
                            "outreach_relay_country: the relay is in %s, but the region profile "
                            "%s keeps personal data in %s (transfer.allowed: false); use a relay "
                            "in %s",
                            c->outreach_relay_country, p->region, p->country, p->country);
    if (!strcmp(p->country, "US") && !c->outreach_postal_address[0])
        return op_error_set(err, -EINVAL, "outreach_postal_address",
                            "outreach_postal_address: required in %s (CAN-SPAM, 15 U.S.C. "
                            "7704(a)(5): the sender's postal address in every message)",
                            p->region);
    return 0;
}

static int read_password(const char *path, char *out, size_t cap, struct op_error *err)
{
    out[0] = '\0';
    if (!path[0])
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return op_error_set(err, -errno, "outreach_password_file",
                            "outreach_password_file: cannot read %s: %s", path, strerror(errno));
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int64_t now_ms(void)
{
    return (int64_t)hlc_wall_ms(NULL);
}

/* Waits up to ms or until stopped; returns 1 when asked to stop. */
static int wait_ms(struct outreach_sender *o, int64_t ms)
{
    uv_mutex_lock(&o->lock);
    if (!o->stop && ms > 0)
        (void)uv_cond_timedwait(&o->cond, &o->lock, (uint64_t)ms * 1000000u);
    int stop = o->stop;
    uv_mutex_unlock(&o->lock);
    return stop;
}

static void load_policy(struct outreach_sender *o)
{
    struct op_error err;
    op_error_clear(&err);
    struct policy *p = NULL;
    if (node_policy_load(o->policy_file[0] ? o->policy_file : NULL, o->cfg.db,
                         store_region(o->store), &p, &err) < 0) {
        log_warning("outreach: cannot load the region policy again (%s); keeping the one in use",
                    err.msg);
        return;
    }
    policy_free(o->policy);
    o->policy = p;
}

/* One message in hand: build, record the attempt, send, record the
 * outcome. */
static void send_one(struct outreach_sender *o, struct outreach_job *job)
{
    struct op_error err;
    op_error_clear(&err);
    /* Each channel's transport is its own module. */
    if (!strcmp(job->channel, "sms")) {
        outreach_sms_sender_send(&o->sms, o->store, o->policy, job);
        return;
    }
    if (!o->cfg.outreach_relay[0]) { /* e-mail while no relay is configured: it waits */
        (void)outreach_sms_defer(o->store, job->id, now_ms() + 3600LL * 1000, NULL);
        return;
    }
    char token[OUTREACH_TOKEN_BUF], bounce[OUTREACH_TOKEN_BUF];
    int rc = outreach_new_token(token, &err);
    if (rc == 0)
        rc = outreach_new_token(bounce, &err);
    if (rc < 0) {
        log_err("outreach: message %lld: %s", (long long)job->id, err.msg);
        return;
    }
    struct outreach_mail_in in = {
        .id = job->id,
        .node_id = store_node_id(o->store),
        .from = o->cfg.outreach_from,
        .to = job->address,
        .language = job->language,
        .tmpl = job->tmpl,
        .purpose = job->purpose,
        .confirm_token = job->confirm_token,
        .subject = job->subject,
        .body = job->body,
        .public_url = o->cfg.outreach_public_url,
        .unsub_token = token,
        .bounce_token = bounce,
        .postal_address = o->cfg.outreach_postal_address,
        .policy = o->policy,
        .now_ms = now_ms(),
    };
    char *data = NULL;
    size_t len = 0;
    char lang[8];
    struct op_error berr;
    op_error_clear(&berr);
    int built = outreach_mail_build(&in, &data, &len, lang, &berr);
    /* The attempt (and the bounce token's hash) is on disk before a byte
     * goes to the relay. */
    rc = store_begin(o->store, &err);
    if (rc == 0) {
        rc = outreach_bounce_ref(o->store, job->id, bounce, &err);
        if (rc == 0)
            rc = outreach_attempt(o->store, job, o->cfg.outreach_relay, token, 0, &err);
        if (rc == 0)
            rc = store_commit(o->store, &err);
        else
            store_rollback(o->store);
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(bounce, sizeof bounce);
    if (rc < 0) {
        if (rc != -ESTALE)
            log_err("outreach: message %lld: cannot record the attempt: %s", (long long)job->id,
                    err.msg);
        free(data);
        return;
    }
    enum outreach_outcome oc;
    int refused_by_relay = 0;
    char detail[300];
    if (built < 0) {
        oc = OUTREACH_PERMANENT;
        snprintf(detail, sizeof detail, "cannot build the message: %.200s", berr.msg);
    } else {
        struct smtp_message m = {
            .relay = o->cfg.outreach_relay,
            .allow_plain = o->cfg.outreach_allow_plain,
            .ca_file = o->cfg.outreach_ca_file,
            .user = o->cfg.outreach_user,
            .password = o->password,
            .from = o->cfg.outreach_from,
            .to = job->address,
            .data = data,
            .len = len,
            .timeout_ms = o->cfg.outreach_timeout_ms,
        };
        struct smtp_result r;
        smtp_client_send(&m, &r);
        oc = r.outcome == SMTP_SENT        ? OUTREACH_SENT
             : r.outcome == SMTP_PERMANENT ? OUTREACH_PERMANENT
             : r.outcome == SMTP_UNKNOWN   ? OUTREACH_UNKNOWN
                                           : OUTREACH_TEMPORARY;
        snprintf(detail, sizeof detail, "%s", r.detail);
        refused_by_relay = r.outcome == SMTP_PERMANENT;
    }
    if (data)
        explicit_bzero(data, len);
    free(data);
    /* A relay's 5xx is a hard bounce: the state and the event together. */
    int began = refused_by_relay && store_begin(o->store, &err) == 0;
    if (refused_by_relay && !began)
        log_warning("outreach: message %lld: the bounce is not recorded: %s", (long long)job->id,
                    err.msg);
    rc = outreach_outcome(o->store, job->id, oc, oc == OUTREACH_SENT ? "" : detail,
                          o->cfg.outreach_retry_s, o->cfg.outreach_max_attempts, 0, &err);
    if (began) {
        int suppressed = 0;
        if (rc == 0)
            rc = outreach_record_bounce(o->store, job->id, "bounced_hard", detail,
                                        o->cfg.outreach_hard_bounce_limit, 0, NULL, &suppressed,
                                        &err);
        if (rc == 0)
            rc = store_commit(o->store, &err);
        else
            store_rollback(o->store);
        if (rc == 0 && suppressed)
            log_info("outreach: message %lld: the contact's address bounced hard %u times and "
                     "is suppressed for e-mail",
                     (long long)job->id, o->cfg.outreach_hard_bounce_limit);
    }
    if (rc < 0)
        log_err("outreach: message %lld: cannot record the outcome (%s): %s", (long long)job->id,
                detail, err.msg);
    else if (oc == OUTREACH_UNKNOWN)
        log_warning("outreach: message %lld: outcome unknown: %s", (long long)job->id, detail);
    else if (oc != OUTREACH_SENT)
        log_info("outreach: message %lld: %s", (long long)job->id, detail);
}

static void run(void *arg)
{
    struct outreach_sender *o = arg;
    int64_t next_allowed = 0, policy_at = now_ms(), campaigns_at = 0;
    int planning = 0;
    int64_t spacing = 60000 / (int64_t)o->cfg.outreach_rate;
    for (;;) {
        uv_mutex_lock(&o->lock);
        int stop = o->stop, reload = o->reload;
        o->reload = 0;
        uv_mutex_unlock(&o->lock);
        if (stop)
            break;
        int64_t now = now_ms();
        if (reload || now - policy_at >= POLICY_EVERY_MS) {
            load_policy(o);
            policy_at = now;
        }
        struct op_error err;
        op_error_clear(&err);
        if (now >= campaigns_at) {
            /* Campaigns start, end and are planned a batch at a time. */
            planning = 0;
            if (campaign_tick(o->store, o->policy, CAMPAIGN_BATCH, 0, &planning, &err) < 0)
                log_err("outreach: campaigns: %s", err.msg);
            campaigns_at = planning ? now : now + CAMPAIGN_EVERY_MS;
        }
        if (now < next_allowed) {
            if (!planning)
                wait_ms(o, next_allowed - now < CAMPAIGN_EVERY_MS ? next_allowed - now
                                                                  : CAMPAIGN_EVERY_MS);
            continue;
        }
        int64_t day = now - now % (86400LL * 1000), sent = 0;
        if (outreach_sent_since(o->store, day, &sent, &err) < 0) {
            log_err("outreach: %s", err.msg);
            wait_ms(o, 5000);
            continue;
        }
        if (sent >= (int64_t)o->cfg.outreach_daily_cap) {
            wait_ms(o, 60000);
            continue;
        }
        struct outreach_job job;
        int rc = outreach_next(o->store, o->policy, 0, &job, &err);
        if (rc < 0) {
            log_err("outreach: cannot read the queue: %s", err.msg);
            wait_ms(o, 5000);
            continue;
        }
        if (rc == 0) {
            if (!planning)
                wait_ms(o, IDLE_MS);
            continue;
        }
        next_allowed = now_ms() + spacing;
        send_one(o, &job);
        outreach_job_free(&job);
    }
}

int outreach_sender_start(const struct outpostd_config *c, const char *policy_file,
                          struct outreach_sender **out, int64_t *unknown, struct op_error *err)
{
    *out = NULL;
    if (unknown)
        *unknown = 0;
    if (!c->outreach_relay[0] && !c->outreach_sms_gateway[0])
        return 0;
    int rc = config_check_outreach(c, err);
    if (rc == 0)
        rc = config_check_sms(c, err);
    if (rc < 0)
        return rc;
    rc = smtp_client_global_init(err);
    if (rc < 0)
        return rc;
    struct outreach_sender *o = calloc(1, sizeof *o);
    if (!o)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    o->cfg = *c;
    snprintf(o->policy_file, sizeof o->policy_file, "%s", policy_file ? policy_file : "");
    rc = read_password(c->outreach_password_file, o->password, sizeof o->password, err);
    if (rc == 0)
        rc = store_open(c->db, 0, &o->store, err);
    if (rc == 0)
        rc = node_policy_load(policy_file, c->db, store_region(o->store), &o->policy, err);
    if (rc == 0)
        rc = outreach_sender_check(c, o->policy, err);
    if (rc == 0)
        rc = outreach_sms_sender_init(&o->sms, &o->cfg, err);
    if (rc == 0)
        rc = outreach_recover(o->store, unknown, err);
    if (rc == 0) {
        uv_mutex_init(&o->lock);
        uv_cond_init(&o->cond);
        rc = uv_thread_create(&o->thread, run, o);
        if (rc < 0) {
            uv_cond_destroy(&o->cond);
            uv_mutex_destroy(&o->lock);
            op_error_set(err, rc, NULL, "cannot start the outreach sender: %s", uv_strerror(rc));
        }
    }
    if (rc < 0) {
        outreach_sms_sender_clear(&o->sms);
        policy_free(o->policy);
        store_close(o->store);
        explicit_bzero(o->password, sizeof o->password);
        free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void outreach_sender_reload(struct outreach_sender *o)
{
    if (!o)
        return;
    uv_mutex_lock(&o->lock);
    o->reload = 1;
    uv_cond_signal(&o->cond);
    uv_mutex_unlock(&o->lock);
}

void outreach_sender_stop(struct outreach_sender *o)
{
    if (!o)
        return;
    uv_mutex_lock(&o->lock);
    o->stop = 1;
    uv_cond_signal(&o->cond);
    uv_mutex_unlock(&o->lock);
    uv_thread_join(&o->thread);
    uv_cond_destroy(&o->cond);
    uv_mutex_destroy(&o->lock);
    outreach_sms_sender_clear(&o->sms);
    policy_free(o->policy);
    store_close(o->store);
    explicit_bzero(o->password, sizeof o->password);
    free(o);
}
