/*
 * Tests for appliance/web/web.c and the assets embed_web.py built into
 * it: which paths the app owns, which asset a path names (and that none
 * escapes with ".."), that every asset inflates to its recorded length
 * and bytes of the source tree, the first load's compressed size within
 * its 200 KB budget, no inline script or style (the CSP forbids them), no
 * innerHTML in the app's script, and a catalogue for each language with
 * the direction it is written in.
 */
#include "web.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static char *inflated(const char *path)
{
    const struct web_asset *a = web_find(path);
    if (!a)
        return NULL;
    char *out = malloc(a->len + 1);
    long n = out ? web_inflate(a, (unsigned char *)out, a->len) : -1;
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

static void owns_and_finds(void)
{
    CHECK(web_owns("/"));
    CHECK(web_owns("/app"));
    CHECK(web_owns("/app/app.js"));
    CHECK(!web_owns("/api/v1/contacts"));
    CHECK(!web_owns("/healthz"));
    CHECK(!web_owns("/metrics"));
    CHECK(!web_owns("/application"));
    CHECK_STR(web_find("/app/")->path, "index.html");
    CHECK_STR(web_find("/app")->path, "index.html");
    CHECK_STR(web_find("/app/i18n/pt-BR.json")->path, "i18n/pt-BR.json");
    CHECK(web_find("/app/../../etc/passwd") == NULL);
    CHECK(web_find("/app/i18n/../app.js") == NULL);
    CHECK(web_find("/app/nope.js") == NULL);
    CHECK(web_find("/") == NULL);
    CHECK(web_find("/api/v1/session") == NULL);
    CHECK_STR(web_find("/app/app.js")->type, "text/javascript; charset=utf-8");
    CHECK_STR(web_find("/app/app.css")->type, "text/css; charset=utf-8");
}

static void every_asset_is_the_source(void)
{
    const char *dir = getenv("WEB_ASSETS_DIR");
    CHECK(dir != NULL);
    CHECK(web_asset_count >= 14);
    for (size_t i = 0; dir && i < web_asset_count; i++) {
        const struct web_asset *a = &web_assets[i];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, a->path);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f)
            continue;
        char *src = malloc(a->len + 2);
        size_t n = fread(src, 1, a->len + 1, f);
        fclose(f);
        CHECK_EQ(n, a->len);
        unsigned char *out = malloc(a->len + 1);
        CHECK_EQ(web_inflate(a, out, a->len), (long)a->len);
        CHECK(memcmp(out, src, a->len) == 0);
        CHECK_EQ(web_inflate(a, out, a->len ? a->len - 1 : 0), a->len ? -ENOSPC : 0);
        CHECK_EQ(strlen(a->etag), 18u);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(a->etag, web_assets[k].etag) != 0);
        free(out);
        free(src);
    }
}

static void first_load_budget(void)
{
    const char *first[] = {"/app/", "/app/app.css", "/app/app.js", "/app/i18n/en.json",
                           "/app/icon.svg"};
    size_t total = 0;
    for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
        total += web_find(first[i])->gz_len;
    printf("first load: %zu bytes gzipped\n", total);
    CHECK(total < 200 * 1024);
}

static void no_inline_code(void)
{
    char *html = inflated("/app/");
    CHECK(html != NULL);
    CHECK(strstr(html, "<script>") == NULL);
    CHECK(strstr(html, " style=") == NULL);
    CHECK(strstr(html, "onclick=") == NULL);
    CHECK(strstr(html, "<script src=\"app.js\" defer></script>") != NULL);
    CHECK(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL);
    free(html);
    char *js = inflated("/app/app.js");
    CHECK(js != NULL);
    CHECK(strstr(js, "innerHTML") == NULL);
    CHECK(strstr(js, "eval(") == NULL);
    CHECK(strstr(js, "http://") == NULL && strstr(js, "https://") == NULL);
    free(js);
    CHECK(strstr(WEB_CSP, "script-src 'self';") != NULL);
    CHECK(strstr(WEB_CSP, "unsafe") == NULL);
}

static void catalogues(void)
{
    const char *langs[] = {"en", "es", "pt-BR", "fr", "de", "ru", "sw", "ar"};
    char *en_text = inflated("/app/i18n/en.json");
    json_t *en = json_loads(en_text ? en_text : "", 0, NULL);
    CHECK(json_is_object(en));
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/app/i18n/%s.json", langs[i]);
        char *text = inflated(path);
        json_t *j = json_loads(text ? text : "", 0, NULL);
        CHECK(json_is_object(j));
        CHECK_STR(json_string_value(json_object_get(j, "dir")),
                  strcmp(langs[i], "ar") ? "ltr" : "rtl");
        /* every key is one English has; the screens' words are translated */
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) CHECK(json_object_get(en, k) != NULL);
        CHECK(json_object_get(j, "login.title") != NULL);
        CHECK(json_object_get(j, "search.title") != NULL);
        /* the refused-captures screen speaks every language too */
        CHECK(json_object_get(j, "attention.count") != NULL);
        CHECK(json_object_get(j, "attention.discard") != NULL);
        if (strcmp(langs[i], "en"))
            CHECK(strcmp(json_string_value(json_object_get(j, "login.title")),
                         json_string_value(json_object_get(en, "login.title"))) != 0);
        json_decref(j);
        free(text);
    }
    json_decref(en);
    free(en_text);
}

int main(void)
{
    RUN(owns_and_finds);
    RUN(every_asset_is_the_source);
    RUN(first_load_budget);
    RUN(no_inline_code);
    RUN(catalogues);
    return tl_report();
}
