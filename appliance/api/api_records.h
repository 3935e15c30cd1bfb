/*
 * The record handlers of the API: list, get, search, create, update and
 * delete for the collections of api_route.h (contacts, organizations,
 * their links, deals, activities, tasks, notes). Reads run on a read
 * connection with the user's viewer restriction; writes join the
 * writer's batch (api_db.h) and answer only after their commit. The
 * invariant: a field user's records stay theirs or shared (owner_id set
 * to themselves on create, and never to someone else), and a change
 * needs the version the client last read (If-Match).
 */
#ifndef OUTPOST_API_RECORDS_H
#define OUTPOST_API_RECORDS_H

#include "api_db.h"
#include "api_request.h"
#include "auth.h"
#include "entity.h"
#include "store.h"

/* The most bytes one page of a list may take (1,000 records of 64 KiB). */
#define API_LIST_BODY_MAX (64u << 20)

/* GET /api/v1/{collection}: one page of e's records, {"items": [...],
 * "next_cursor": ...}. Parameters: limit (1..STORE_LIST_MAX), cursor, sort
 * (id, updated), updated_since, and equality filters on e's filterable
 * fields (owner, organization, contact, deal and assignee name their _id
 * fields). With forced_field, also the filter forced_field = forced (a
 * sub-collection). 400 names an unknown parameter. */
void api_records_list(struct store *rd, struct api_call *c, const struct auth_user *u,
                      const struct entity_def *e, const char *forced_field, const char *forced);

/* GET /api/v1/{collection}/{id}: 200 with the record and its ETag; 404 if
 * there is none the user may see. */
void api_records_get(struct store *rd, struct api_call *c, const struct auth_user *u);

/* GET /api/v1/search?q=TEXT[&limit=N]: contacts and organizations, 200
 * {"items": [...]}; 400 without q, for another parameter or text the
 * search cannot use. */
void api_records_search(struct store *rd, struct api_call *c, const struct auth_user *u);

/* POST /api/v1/{collection} with a JSON object: 201 with the record,
 * ETag and Location; store errors as api_reply_store_error says (a
 * probable duplicate contact 409 unless ?skip_duplicate_check=true). */
void api_records_create(struct api_db *db, struct api_call *c, const struct auth_user *u);

/* Begins a write on behalf of u for the call c: api_db_write_begin with
 * the user's name, address and viewer restriction. On failure it answers
 * the store error and frees body (may be NULL), so that the handler only
 * returns; on success the caller ends the write with api_db_write_end. */
int api_records_write_begin(struct api_db *db, struct api_call *c, const struct auth_user *u,
                            json_t *body, struct api_write *w, struct op_error *err);

/* PATCH /api/v1/{collection}/{id} with the fields to change: needs
 * If-Match (428 without, 412 if malformed or stale; * takes the current
 * version); 200 with the record and its new ETag. */
void api_records_update(struct api_db *db, struct api_call *c, const struct auth_user *u);

/* DELETE /api/v1/{collection}/{id}: If-Match as for update; 204, leaving
 * a tombstone. */
void api_records_delete(struct api_db *db, struct api_call *c, const struct auth_user *u);

#endif
