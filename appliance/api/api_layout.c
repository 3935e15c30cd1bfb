/*
 * The layout answer; see api_layout.h.
 */
#include "api_layout.h"

#include <stdio.h>
#include <string.h>

#include "api_reply.h"
#include "entity.h"
#include "policy.h"

static const char *type_name(enum field_type t)
{
    switch (t) {
    case FIELD_TEXT:
        return "text";
    case FIELD_EMAIL:
        return "email";
    case FIELD_PHONE:
        return "phone";
    case FIELD_COUNTRY:
        return "country";
    case FIELD_LANGUAGE:
        return "language";
    case FIELD_DATE:
        return "date";
    case FIELD_TIME:
        return "time";
    case FIELD_ENUM:
        return "enum";
    case FIELD_MONEY:
        return "money";
    case FIELD_CURRENCY:
        return "currency";
    case FIELD_REF:
        return "ref";
    case FIELD_BOOL:
        return "bool";
    case FIELD_OBJECT:
        return "object";
    }
    return "text";
}

static const char *custom_type_name(enum policy_custom_type t)
{
    switch (t) {
    case POLICY_CUSTOM_TEXT:
        return "text";
    case POLICY_CUSTOM_ENUM:
        return "enum";
    case POLICY_CUSTOM_INTEGER:
        return "integer";
    case POLICY_CUSTOM_DATE:
        return "date";
    case POLICY_CUSTOM_BOOLEAN:
        return "bool";
    }
    return "text";
}

static json_t *string_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *entity_fields(const struct policy *p, const struct entity_def *e)
{
    json_t *fields = json_array();
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        if ((f->flags & FIELD_INTERNAL) || policy_forbidden_field(p, e, f->name))
            continue;
        json_t *o = json_pack("{s:s, s:s, s:b, s:b}", "name", f->name, "type", type_name(f->type),
                              "required", (f->flags & FIELD_REQUIRED) != 0, "office_only",
                              policy_class_of(p, e, f->name) == POLICY_LOCAL_ONLY);
        if (f->max_len)
            json_object_set_new(o, "max_length", json_integer(f->max_len));
        if (f->values) {
            json_t *vals = json_array();
            for (const char *const *v = f->values; *v; v++)
                json_array_append_new(vals, json_string(*v));
            json_object_set_new(o, "values", vals);
        }
        if (f->ref)
            json_object_set_new(o, "ref", json_string(f->ref->name));
        json_array_append_new(fields, o);
    }
    for (size_t i = 0; i < p->ncustom; i++) {
        const struct policy_custom_field *cf = &p->custom[i];
        char name[80];
        snprintf(name, sizeof name, "custom.%s", cf->name);
        if (cf->entity != e || policy_forbidden_field(p, e, name))
            continue;
        json_t *labels = json_object();
        for (size_t k = 0; k < cf->nlabels; k++)
            json_object_set_new(labels, cf->labels[k].lang, json_string(cf->labels[k].text));
        json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:o, s:i}", "name", name, "type",
                              custom_type_name(cf->type), "required", cf->required, "office_only",
                              policy_class_of(p, e, name) == POLICY_LOCAL_ONLY, "labels", labels,
                              "max_length", cf->max_length ? (int)cf->max_length : 200);
        if (cf->pattern[0])
            json_object_set_new(o, "pattern", json_string(cf->pattern));
        if (cf->nvalues)
            json_object_set_new(o, "values", string_array(cf->values, cf->nvalues));
        json_array_append_new(fields, o);
    }
    return fields;
}

void api_layout_get(struct api_db *db, struct api_call *c)
{
    static const struct entity_def *const shaped[] = {&entity_contact, &entity_organization,
                                                      &entity_deal,    &entity_activity,
                                                      &entity_task,    &entity_note};
    const struct policy *p = api_db_policy_hold(db);
    if (!p) {
        api_db_policy_release(db);
        api_reply_problem(&c->resp, 503, "no region policy is loaded", NULL);
        return;
    }
    json_t *entities = json_object();
    for (size_t i = 0; i < sizeof shaped / sizeof shaped[0]; i++)
        json_object_set_new(entities, shaped[i]->name,
                            json_pack("{s:o}", "fields", entity_fields(p, shaped[i])));
    json_t *consent = json_array();
    for (size_t i = 0; i < p->nconsent; i++)
        json_array_append_new(consent,
                              json_pack("{s:s, s:s}", "channel", p->consent[i].channel, "mode",
                                        policy_consent_mode_name(p->consent[i].mode)));
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "region", p->region, "country",
                  p->country, "language", p->language, "address_format", p->address_format,
                  "phone_example", p->phone_example, "preferred_channels",
                  string_array(p->preferred_channels, p->npreferred_channels), "consent", consent,
                  "entities", entities);
    api_db_policy_release(db);
    api_reply_json(&c->resp, 200, body);
}
