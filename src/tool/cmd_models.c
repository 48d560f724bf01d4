/* drst models: list, show, promote and roll back model releases. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tool.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: drst models list [--store DIR]\n"
                 "       drst models show KEY|latest|baseline [--store DIR]\n"
                 "       drst models promote KEY [--store DIR] [--pointer latest|baseline]\n"
                 "       drst models rollback [--store DIR] [--pointer latest|baseline]\n"
                 "\n"
                 "Model releases are immutable models/model_<UTC-ts>_<hash> objects with their\n"
                 "models/metrics_<...>.json; the pointers models/latest and models/baseline name\n"
                 "one release each and every move is logged in models/history.\n"
                 "\n"
                 "  list       every release (oldest first) with family, validation acc@0.2 and\n"
                 "             the pointers that name it\n"
                 "  show REF   one release: its metrics JSON and the model header\n"
                 "  promote KEY  point latest (or --pointer) at release KEY\n"
                 "  rollback   point latest (or --pointer) back at the release it named before\n"
                 "             (repeatable: each rollback goes one release further back)\n"
                 "\n"
                 "options:\n"
                 "  --store DIR          the store (default $DRST_STORE, else ./store)\n"
                 "  --pointer NAME       pointer moved by promote/rollback (default latest)\n"
                 "\n"
                 "example:\n"
                 "  drst models list --store ./store\n"
                 "  drst models rollback --store ./store\n");
}

typedef struct list_ctx {
    drst_store_t *st;
    drst_release_t latest, baseline;
    int has_latest, has_baseline;
    size_t n;
} list_ctx_t;

static int list_one(void *opaque, const char *key)
{
    list_ctx_t *c = opaque;
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    if (strncmp(base, "model_", 6) != 0)
        return 0;
    char mkey[DRST_STORE_KEY_MAX + 32];
    snprintf(mkey, sizeof(mkey), "models/metrics_%s.json", base + 6);
    unsigned char *buf = NULL;
    size_t len = 0;
    const char *family = "?";
    double acc = -1;
    json_t *j = NULL;
    if (drst_store_get(c->st, mkey, &buf, &len, NULL, 0) == DRST_OK) {
        j = json_loadb((const char *)buf, len, 0, NULL);
        if (j) {
            const char *f = json_string_value(json_object_get(j, "family"));
            if (f)
                family = f;
            json_t *v = json_object_get(json_object_get(j, "validation"), "acc@0.2");
            if (json_is_number(v))
                acc = json_number_value(v);
        }
    }
    char accs[16] = "-";
    if (acc >= 0)
        snprintf(accs, sizeof(accs), "%.4f", acc);
    printf("%-48s %-6s %-8s %s%s\n", key, family, accs,
           c->has_latest && !strcmp(c->latest.model_key, key) ? " latest" : "",
           c->has_baseline && !strcmp(c->baseline.model_key, key) ? " baseline" : "");
    json_decref(j);
    free(buf);
    c->n++;
    return 0;
}

int cmd_models(int argc, char **argv)
{
    const char *store_uri = getenv("DRST_STORE"), *pointer = "latest";
    char err[DRST_ERRLEN];
    int rc = TOOL_FAIL;
    /* the action comes first; options and the key may follow in any order */
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return TOOL_OK;
    }
    if (argc < 2)
        return tool_usage_error("models", "missing action: list, show, promote or rollback");
    const char *action = argv[1];
    const char *arg = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return TOOL_OK;
        }
        if (!strncmp(a, "--store", 7) && (a[7] == 0 || a[7] == '='))
            dst = &store_uri;
        else if (!strncmp(a, "--pointer", 9) && (a[9] == 0 || a[9] == '='))
            dst = &pointer;
        else if (a[0] == '-')
            return tool_usage_error("models", "unknown option '%s'", a);
        if (!dst) {
            if (arg)
                return tool_usage_error("models", "unexpected argument '%s'", a);
            arg = a;
            continue;
        }
        val = strchr(a, '=');
        if (val)
            val++;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return tool_usage_error("models", "option '%s' needs a value", a);
        *dst = val;
    }
    if (!store_uri)
        store_uri = "store";
    int need_arg = !strcmp(action, "show") || !strcmp(action, "promote");
    if (strcmp(action, "list") && strcmp(action, "show") && strcmp(action, "promote") &&
        strcmp(action, "rollback"))
        return tool_usage_error("models", "unknown action '%s' (list, show, promote, rollback)",
                                action);
    if (need_arg && !arg)
        return tool_usage_error("models", "%s needs a model key", action);
    if (!need_arg && arg)
        return tool_usage_error("models", "unexpected argument '%s'", arg);

    drst_store_t *st = drst_store_open(store_uri, err, sizeof(err));
    if (!st)
        return tool_error("%s", err);
    drst_release_t rel;
    if (!strcmp(action, "list")) {
        list_ctx_t lc = {0};
        lc.st = st;
        lc.has_latest = drst_store_read_pointer(st, "latest", &lc.latest, NULL, 0) == DRST_OK;
        lc.has_baseline = drst_store_read_pointer(st, "baseline", &lc.baseline, NULL, 0) == DRST_OK;
        printf("%-48s %-6s %-8s %s\n", "model", "family", "acc@0.2", "pointers");
        if (drst_store_list(st, "models/", list_one, &lc, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
    } else if (!strcmp(action, "show")) {
        drst_model_t *m = NULL;
        if (drst_store_load_model(st, arg, &m, &rel, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
        printf("model     %s\nmetrics   %s\nfamily    %s\ntarget    %s\nsha256    %s\n"
               "params    %s\nfeatures  %zu:",
               rel.model_key, rel.metrics_key, drst_model_family_name(drst_model_family(m)),
               drst_model_target(m), drst_model_hash_hex(m), drst_model_describe(m),
               drst_model_nfeatures(m));
        for (size_t i = 0; i < drst_model_nfeatures(m); i++)
            printf(" %s", drst_model_feature(m, i));
        printf("\n");
        unsigned char *buf = NULL;
        size_t len = 0;
        if (rel.metrics_key[0] &&
            drst_store_get(st, rel.metrics_key, &buf, &len, NULL, 0) == DRST_OK) {
            fwrite(buf, 1, len, stdout);
            printf("\n");
        }
        free(buf);
        drst_model_free(m);
    } else if (!strcmp(action, "promote")) {
        if (drst_store_resolve(st, arg, &rel, err, sizeof(err)) != DRST_OK ||
            drst_store_set_pointer(st, pointer, &rel, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
        printf("%s -> %s\n", pointer, rel.model_key);
    } else {
        if (drst_store_rollback(st, pointer, &rel, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
        printf("%s -> %s\n", pointer, rel.model_key);
    }
    rc = TOOL_OK;
out:
    drst_store_close(st);
    return rc;
}
